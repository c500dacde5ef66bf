// The sign-in screens (issue 6), shown whenever `auth_status().state` is not `signed_in`:
// first account (setup), device enrollment (enroll), sign in (signed_out, with the people who
// may sign in here offline), the lock screen (locked) and the revoked-device message.

import QRCode from "qrcode";
import { type FormEvent, type ReactNode, useEffect, useState } from "react";
import {
  type AuthStatus,
  changePassword,
  confirmSetup,
  enrollDevice,
  type KnownUser,
  setupAccount,
  signIn,
  signOut,
  type TotpEnrollment,
  unlock,
} from "./bindings";
import { MIN_PASSWORD_CHARS, roleKey, unlockNeedsCode, validUserName } from "./auth";
import { errorText, isErrorPayload } from "./errors";
import { formatDateTime } from "./format";
import { type Lang, t } from "./i18n";

interface Props {
  lang: Lang;
  status: AuthStatus;
  /** The login name to pre-fill (`outpost --user NAME`). */
  loginHint?: string;
  /** Clock, ms (injectable for tests). */
  now?: () => number;
  /** A command answered with a new status. */
  onStatus: (s: AuthStatus) => void;
}

/**
 * Runs a sign-in command: busy while it runs, its error message shown when it fails. A
 * `forbidden` refusal (an administrator's or auditor's account: the console is not for them)
 * is shown in the screen's language.
 */
function useSubmit(onStatus: (s: AuthStatus) => void, lang: Lang) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (f: () => Promise<AuthStatus | void>) => {
    setBusy(true);
    setError(null);
    try {
      const s = await f();
      if (s) onStatus(s);
    } catch (e) {
      setError(isErrorPayload(e) && e.code === "forbidden" ? t(lang, "auth.consoleRoleRefused") : errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, setError, run };
}

function ErrorLine({ lang, error }: { lang: Lang; error: string | null }) {
  if (!error) return null;
  return (
    <p id="auth-error" className="auth-error" role="alert">
      <strong>{t(lang, "auth.failed")}:</strong> <span data-error-message>{error}</span>
    </p>
  );
}

function Field({ id, label, children, hint }: { id: string; label: string; children: ReactNode; hint?: string }) {
  return (
    <label className="auth-field" htmlFor={id}>
      <span>{label}</span>
      {children}
      {hint && <small className="muted">{hint}</small>}
    </label>
  );
}

/** The six-digit code field (numeric keyboard, one-time-code autofill). */
function CodeInput({ lang, value, onChange, id = "auth-code" }: { lang: Lang; value: string; onChange: (v: string) => void; id?: string }) {
  return (
    <Field id={id} label={t(lang, "auth.code")} hint={t(lang, "auth.codeHint")}>
      <input
        id={id}
        inputMode="numeric"
        autoComplete="one-time-code"
        pattern="[0-9]{6}"
        maxLength={6}
        value={value}
        onChange={(e) => onChange(e.target.value.replace(/\D/g, ""))}
      />
    </Field>
  );
}

/**
 * The whole sign-in screen for `status.state`. `signInFirst`: on the lock screen, open the
 * sign-in form (password and code: an online sign-in) rather than the unlock form — the sync
 * indicator's "sign in" when the server wants an online sign-in.
 */
export function SignInScreen(props: Props & { signInFirst?: boolean }) {
  const { lang, status } = props;
  const [switching, setSwitching] = useState(props.signInFirst ?? false);
  let body: ReactNode;
  switch (status.state) {
    case "setup":
      body = <SetupForm {...props} />;
      break;
    case "enroll":
      body = <EnrollForm {...props} />;
      break;
    case "locked":
      body = switching ? (
        <SignInForm {...props} onBack={() => setSwitching(false)} />
      ) : (
        <LockForm {...props} onSwitch={() => setSwitching(true)} />
      );
      break;
    case "password_change":
      body = <ChangePasswordForm lang={lang} status={status} onStatus={props.onStatus} forced />;
      break;
    case "revoked":
      body = (
        <section id="auth-revoked" role="alert">
          <h2>{t(lang, "auth.revoked.title")}</h2>
          <p>{t(lang, "auth.revoked.text")}</p>
          {status.message && <p data-auth-message>{status.message}</p>}
        </section>
      );
      break;
    default:
      body = <SignInForm {...props} />;
  }
  return (
    <main className="auth-screen" id="auth-screen" data-auth-state={status.state}>
      <div className="auth-card">
        <h1 className="brand">{t(lang, "app.name")}</h1>
        {status.message && status.state !== "revoked" && (
          <p className="auth-message" data-auth-message>
            {status.message}
          </p>
        )}
        {body}
      </div>
    </main>
  );
}

/** setup: user, display name, password twice; then the TOTP secret (text and QR) and a code. */
function SetupForm({ lang, loginHint, onStatus }: Props) {
  const [user, setUser] = useState(loginHint ?? "");
  const [displayName, setDisplayName] = useState("");
  const [password, setPassword] = useState("");
  const [password2, setPassword2] = useState("");
  const [enrollment, setEnrollment] = useState<TotpEnrollment | null>(null);
  const [code, setCode] = useState("");
  const { busy, error, setError, run } = useSubmit(onStatus, lang);

  const start = (e: FormEvent) => {
    e.preventDefault();
    if (!validUserName(user.trim()) || !displayName.trim()) return setError(t(lang, "auth.setup.needUser"));
    if ([...password].length < MIN_PASSWORD_CHARS) return setError(t(lang, "auth.setup.tooShort", { min: MIN_PASSWORD_CHARS }));
    if (password !== password2) return setError(t(lang, "auth.setup.mismatch"));
    void run(async () => {
      setEnrollment(await setupAccount({ user: user.trim(), display_name: displayName.trim(), password }));
    });
  };
  const confirm = (e: FormEvent) => {
    e.preventDefault();
    void run(() => confirmSetup({ code }));
  };

  if (enrollment) {
    return (
      <form id="setup-totp" onSubmit={confirm}>
        <h2>{t(lang, "auth.setup.totpTitle")}</h2>
        <p className="muted">{t(lang, "auth.setup.totpIntro")}</p>
        <QrCode text={enrollment.uri} alt={t(lang, "auth.setup.qr")} />
        <p>
          {t(lang, "auth.setup.secret")}: <code id="totp-secret" className="totp-secret" data-totp-secret={enrollment.secret}>{groupSecret(enrollment.secret)}</code>
        </p>
        <CodeInput lang={lang} value={code} onChange={setCode} />
        <ErrorLine lang={lang} error={error} />
        <div className="auth-actions">
          <button type="submit" id="setup-confirm" className="primary" disabled={busy || code.length !== 6}>
            {busy ? t(lang, "auth.working") : t(lang, "auth.setup.confirm")}
          </button>
          <button type="button" id="setup-restart" disabled={busy} onClick={() => (setEnrollment(null), setCode(""), setError(null))}>
            {t(lang, "auth.setup.back")}
          </button>
        </div>
      </form>
    );
  }
  return (
    <form id="setup-account" onSubmit={start}>
      <h2>{t(lang, "auth.setup.title")}</h2>
      <p className="muted">{t(lang, "auth.setup.intro")}</p>
      <Field id="auth-user" label={t(lang, "auth.user")}>
        <input id="auth-user" autoComplete="username" value={user} onChange={(e) => setUser(e.target.value)} />
      </Field>
      <Field id="auth-display-name" label={t(lang, "auth.displayName")}>
        <input id="auth-display-name" autoComplete="name" value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
      </Field>
      <Field id="auth-password" label={t(lang, "auth.password")} hint={t(lang, "auth.setup.tooShort", { min: MIN_PASSWORD_CHARS })}>
        <input id="auth-password" type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />
      </Field>
      <Field id="auth-password2" label={t(lang, "auth.password2")}>
        <input id="auth-password2" type="password" autoComplete="new-password" value={password2} onChange={(e) => setPassword2(e.target.value)} />
      </Field>
      <ErrorLine lang={lang} error={error} />
      <div className="auth-actions">
        <button type="submit" id="setup-next" className="primary" disabled={busy}>
          {busy ? t(lang, "auth.working") : t(lang, "auth.setup.next")}
        </button>
      </div>
    </form>
  );
}

/** The base32 secret in groups of four, easier to type. */
export function groupSecret(secret: string): string {
  return secret.replace(/(.{4})(?=.)/g, "$1 ");
}

/** A QR code drawn here from `text` (an SVG data URL; nothing leaves the machine). */
function QrCode({ text, alt }: { text: string; alt: string }) {
  const [src, setSrc] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    QRCode.toString(text, { type: "svg", errorCorrectionLevel: "M", margin: 2 })
      .then((svg) => live && setSrc(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`))
      .catch((e: unknown) => live && setError(errorText(e)));
    return () => {
      live = false;
    };
  }, [text]);
  if (error) return <p className="auth-error">{error}</p>;
  return src ? <img id="totp-qr" className="totp-qr" src={src} alt={alt} width={200} height={200} /> : null;
}

/** enroll: server, user, password, code, device name. */
function EnrollForm({ lang, status, loginHint, onStatus }: Props) {
  const [server, setServer] = useState(status.server_url ?? "");
  const [user, setUser] = useState(loginHint ?? "");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [deviceName, setDeviceName] = useState("");
  const { busy, error, run } = useSubmit(onStatus, lang);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(() => enrollDevice({ server_url: server.trim(), user: user.trim(), password, code, device_name: deviceName.trim() }));
  };
  return (
    <form id="enroll-device" onSubmit={submit}>
      <h2>{t(lang, "auth.enroll.title")}</h2>
      <p className="muted">{t(lang, "auth.enroll.intro")}</p>
      <Field id="enroll-server" label={t(lang, "auth.enroll.server")}>
        <input id="enroll-server" type="url" placeholder="https://10.0.0.5:7400" value={server} onChange={(e) => setServer(e.target.value)} />
      </Field>
      <Field id="auth-user" label={t(lang, "auth.user")}>
        <input id="auth-user" autoComplete="username" value={user} onChange={(e) => setUser(e.target.value)} />
      </Field>
      <Field id="auth-password" label={t(lang, "auth.password")}>
        <input id="auth-password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
      </Field>
      <CodeInput lang={lang} value={code} onChange={setCode} />
      <Field id="enroll-device-name" label={t(lang, "auth.enroll.deviceName")}>
        <input id="enroll-device-name" value={deviceName} onChange={(e) => setDeviceName(e.target.value)} />
      </Field>
      <ErrorLine lang={lang} error={error} />
      <div className="auth-actions">
        <button type="submit" id="enroll-submit" className="primary" disabled={busy}>
          {busy ? t(lang, "auth.working") : t(lang, "auth.enroll.submit")}
        </button>
      </div>
    </form>
  );
}

function KnownUsers({ lang, users, now, onPick }: { lang: Lang; users: KnownUser[]; now: number; onPick: (u: string) => void }) {
  if (users.length === 0) return null;
  return (
    <section className="known-users" aria-labelledby="known-users-title">
      <h3 id="known-users-title">{t(lang, "auth.known.title")}</h3>
      <ul id="known-users">
        {users.map((u) => {
          const key = roleKey(u.role);
          const until = u.offline_until;
          const expired = until != null && Date.parse(until) <= now;
          return (
            <li key={u.user} data-known-user={u.user}>
              <button type="button" className="link" onClick={() => onPick(u.user)}>
                {u.display_name} ({u.user})
              </button>{" "}
              <span className="muted">{key ? t(lang, key) : u.role}</span>{" "}
              <small className={expired ? "auth-expired" : "muted"} data-offline-until={until ?? ""}>
                {until == null
                  ? t(lang, "auth.known.noLimit")
                  : t(lang, expired ? "auth.known.expired" : "auth.known.until", { time: formatDateTime(until, lang) })}
              </small>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

/** signed_out (or "switch user" on the lock screen): user, password, code. */
function SignInForm({ lang, status, loginHint, now = Date.now, onStatus, onBack }: Props & { onBack?: () => void }) {
  const [user, setUser] = useState(loginHint ?? (onBack ? "" : (status.known_users[0]?.user ?? "")));
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const { busy, error, run } = useSubmit(onStatus, lang);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(() => signIn({ user: user.trim(), password, code }));
  };
  return (
    <form id="sign-in" onSubmit={submit}>
      <h2>{t(lang, "auth.title")}</h2>
      <KnownUsers lang={lang} users={status.known_users} now={now()} onPick={setUser} />
      <Field id="auth-user" label={t(lang, "auth.user")}>
        <input id="auth-user" autoComplete="username" value={user} onChange={(e) => setUser(e.target.value)} />
      </Field>
      <Field id="auth-password" label={t(lang, "auth.password")}>
        <input id="auth-password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
      </Field>
      <CodeInput lang={lang} value={code} onChange={setCode} />
      <ErrorLine lang={lang} error={error} />
      <div className="auth-actions">
        <button type="submit" id="sign-in-submit" className="primary" disabled={busy}>
          {busy ? t(lang, "auth.working") : t(lang, "auth.signIn")}
        </button>
        {onBack && (
          <button type="button" id="switch-back" onClick={onBack} disabled={busy}>
            {t(lang, "auth.locked.back")}
          </button>
        )}
      </div>
    </form>
  );
}

/** locked: the same person's password (and code past 12 hours), or switch user. */
function LockForm({ lang, status, now = Date.now, onStatus, onSwitch }: Props & { onSwitch: () => void }) {
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const { busy, error, run } = useSubmit(onStatus, lang);
  const needCode = unlockNeedsCode(status, now());
  const who = status.user;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(() => unlock({ password, code: needCode ? code : null }));
  };
  return (
    <form id="unlock" onSubmit={submit}>
      <h2>{t(lang, "auth.locked.title")}</h2>
      {who && (
        <p id="locked-user" data-locked-user={who.user}>
          {t(lang, "auth.locked.who", { name: who.display_name, user: who.user })}
        </p>
      )}
      <Field id="auth-password" label={t(lang, "auth.password")}>
        <input id="auth-password" type="password" autoComplete="current-password" autoFocus value={password} onChange={(e) => setPassword(e.target.value)} />
      </Field>
      {needCode && (
        <>
          <p className="muted">{t(lang, "auth.locked.codeNeeded")}</p>
          <CodeInput lang={lang} value={code} onChange={setCode} />
        </>
      )}
      <ErrorLine lang={lang} error={error} />
      <div className="auth-actions">
        <button type="submit" id="unlock-submit" className="primary" disabled={busy}>
          {busy ? t(lang, "auth.working") : t(lang, "auth.locked.unlock")}
        </button>
        <button type="button" id="switch-user" onClick={onSwitch} disabled={busy}>
          {t(lang, "auth.locked.switch")}
        </button>
      </div>
    </form>
  );
}

/**
 * Change password (old, new twice, code) for the signed-in person: from the auth bar, or
 * `forced` when the server said an administrator set the password (state `password_change`:
 * the console stays closed until it is changed; signing out is the other way out).
 */
export function ChangePasswordForm({
  lang,
  status,
  onStatus,
  forced = false,
  onCancel,
}: {
  lang: Lang;
  status: AuthStatus;
  onStatus: (s: AuthStatus) => void;
  forced?: boolean;
  onCancel?: () => void;
}) {
  const [oldPassword, setOldPassword] = useState("");
  const [newPassword, setNewPassword] = useState("");
  const [again, setAgain] = useState("");
  const [code, setCode] = useState("");
  const { busy, error, setError, run } = useSubmit(onStatus, lang);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if ([...newPassword].length < MIN_PASSWORD_CHARS || !newPassword.trim()) {
      setError(t(lang, "auth.setup.tooShort", { min: MIN_PASSWORD_CHARS }));
      return;
    }
    if (newPassword !== again) {
      setError(t(lang, "auth.setup.mismatch"));
      return;
    }
    if (newPassword === oldPassword) {
      setError(t(lang, "auth.change.same"));
      return;
    }
    void run(() => changePassword({ old_password: oldPassword, new_password: newPassword, code }));
  };
  return (
    <form id="change-password-form" data-forced={forced ? "true" : "false"} onSubmit={submit}>
      <h2>{t(lang, "auth.change.title")}</h2>
      {forced && (
        <p id="change-password-required" role="alert">
          {t(lang, "auth.change.required")}
        </p>
      )}
      {status.user && (
        <p className="muted" data-change-user={status.user.user}>
          {status.user.display_name} ({status.user.user})
        </p>
      )}
      <Field id="change-old" label={t(lang, "auth.change.old")}>
        <input id="change-old" type="password" autoComplete="current-password" autoFocus value={oldPassword} onChange={(e) => setOldPassword(e.target.value)} />
      </Field>
      <Field id="change-new" label={t(lang, "auth.change.new")} hint={t(lang, "auth.setup.tooShort", { min: MIN_PASSWORD_CHARS })}>
        <input id="change-new" type="password" autoComplete="new-password" value={newPassword} onChange={(e) => setNewPassword(e.target.value)} />
      </Field>
      <Field id="change-again" label={t(lang, "auth.change.again")}>
        <input id="change-again" type="password" autoComplete="new-password" value={again} onChange={(e) => setAgain(e.target.value)} />
      </Field>
      <CodeInput lang={lang} value={code} onChange={setCode} id="change-code" />
      <ErrorLine lang={lang} error={error} />
      <div className="auth-actions">
        <button type="submit" id="change-password-submit" className="primary" disabled={busy}>
          {busy ? t(lang, "auth.working") : t(lang, "auth.change.submit")}
        </button>
        {forced ? (
          <button type="button" id="change-password-sign-out" onClick={() => void run(() => signOut())} disabled={busy}>
            {t(lang, "auth.bar.signOut")}
          </button>
        ) : (
          onCancel && (
            <button type="button" id="change-password-cancel" onClick={onCancel} disabled={busy}>
              {t(lang, "auth.change.cancel")}
            </button>
          )
        )}
      </div>
    </form>
  );
}
