import { type ReactNode, useCallback, useEffect, useMemo, useState } from "react";
import { type AuthStatus, authStatus, lock, type Settings, signOut, type Startup, startup } from "./bindings";
import { AuthBar } from "./AuthBar";
import { AUTH_POLL_MS, PermissionsContext, permissionsOf, useIdleLock } from "./auth";
import { Console } from "./Console";
import { errorText, isErrorPayload } from "./errors";
import { FieldConsole } from "./FieldConsole";
import { type Lang, resolveLang, t } from "./i18n";
import { PackErrorScreen } from "./panels/PackErrorScreen";
import { SignInScreen } from "./SignIn";

/**
 * Start-up: where sign-in stands, then the sign-in screens until someone is signed in, then
 * the console (or the pack error screen). Signing out, locking (the person, the idle timer or
 * the backend's 12-hour limit) and a revoked device bring the sign-in screens back.
 */
export function App({ loginHint }: { loginHint?: string } = {}) {
  // `loginHint` overrides the backend's (`outpost --user NAME`, AuthStatus.login_hint).
  const [auth, setAuth] = useState<AuthStatus | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  // The sync indicator's "sign in" (the server wants an online sign-in): the console locks and
  // the sign-in form for the same person opens instead of the unlock form.
  const [signInOnline, setSignInOnline] = useState(false);
  const lang = signInLang();

  const refresh = useCallback(() => {
    authStatus()
      .then((s) => {
        setAuth(s);
        setFailure(null);
      })
      .catch((e) => setFailure(errorText(e)));
  }, []);
  useEffect(refresh, [refresh]);

  // While signed in, the backend may lock on its own (12 hours after the full sign-in).
  const signedIn = auth?.state === "signed_in";
  useEffect(() => {
    if (signedIn) setSignInOnline(false);
  }, [signedIn]);
  useEffect(() => {
    if (!signedIn) return;
    const timer = setInterval(refresh, AUTH_POLL_MS);
    return () => clearInterval(timer);
  }, [signedIn, refresh]);

  if (failure) return <Fatal lang={lang} text={failure} />;
  if (!auth) return <main className="loading">{t(lang, "app.loading")}</main>;
  if (auth.state !== "signed_in" || !auth.user) {
    const signInFirst = signInOnline && auth.state === "locked" && auth.user !== null;
    return (
      <SignInScreen
        lang={lang}
        status={auth}
        loginHint={signInFirst ? auth.user?.user : (loginHint ?? auth.login_hint ?? undefined)}
        signInFirst={signInFirst}
        onStatus={setAuth}
      />
    );
  }
  return <SignedIn key={auth.user.user} status={auth} onStatus={setAuth} onSignedOut={refresh} onSignInOnline={() => setSignInOnline(true)} />;
}

/** Where the last console's language is remembered, for the sign-in screens before the next. */
export const LANG_KEY = "outpost.lang";

/** The sign-in screens' language: the last console's, else the system's. */
function signInLang(): Lang {
  try {
    const v = window.localStorage.getItem(LANG_KEY);
    if (v === "zh" || v === "en") return v;
  } catch {
    // No storage: follow the system.
  }
  return resolveLang("auto", navigator.language);
}

function rememberLang(lang: Lang) {
  try {
    window.localStorage.setItem(LANG_KEY, lang);
  } catch {
    // No storage: the sign-in screens follow the system.
  }
}

function Fatal({ lang, text }: { lang: Lang; text: string }) {
  return (
    <main className="fatal" role="alert" id="startup-error">
      <h1>{t(lang, "app.startupFailed")}</h1>
      <p>{text}</p>
    </main>
  );
}

/** The console of the signed-in person, with their permissions, the idle lock and the auth bar. */
function SignedIn({
  status,
  onStatus,
  onSignedOut,
  onSignInOnline,
}: {
  status: AuthStatus;
  onStatus: (s: AuthStatus) => void;
  onSignedOut: () => void;
  onSignInOnline: () => void;
}) {
  const [result, setResult] = useState<Startup | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    startup()
      .then(setResult)
      .catch((e) => {
        // Locked or signed out meanwhile: back to the sign-in screens.
        if (isErrorPayload(e) && e.code === "signed_out") onSignedOut();
        else setFailure(errorText(e));
      });
  }, [onSignedOut]);
  const authAction = useCallback(
    (f: () => Promise<AuthStatus>) => {
      setBusy(true);
      f()
        .then(onStatus)
        .catch((e) => setFailure(errorText(e)))
        .finally(() => setBusy(false));
    },
    [onStatus],
  );
  // No keyboard, mouse or touch input for idle_lock_s: lock (never in field laptop mode).
  useIdleLock(status.idle_lock_s, () => authAction(lock));
  // Keyed on role and unit: the status is read again every AUTH_POLL_MS as a new object.
  const role = status.user?.role ?? null;
  const unitId = status.user?.unit_id ?? null;
  const permissions = useMemo(() => permissionsOf(role === null ? null : { role, unit_id: unitId }), [role, unitId]);
  // Saved settings replace the ones the console opened with, so the auth bar and the lock
  // screen follow a language changed in Settings at once.
  const [saved, setSaved] = useState<Settings | null>(null);
  const lang =
    result?.state === "ready"
      ? resolveLang((saved ?? result.init.settings).language, navigator.language)
      : resolveLang("auto", navigator.language);
  useEffect(() => {
    if (result?.state === "ready") rememberLang(lang);
  }, [result, lang]);
  const bar: ReactNode = <AuthBar lang={lang} status={status} busy={busy} onLock={() => authAction(lock)} onSignOut={() => authAction(signOut)} onStatus={onStatus} />;
  // The sync link wants an online sign-in: lock, and the sign-in form for this person opens.
  const signIn = () => {
    onSignInOnline();
    authAction(lock);
  };

  if (failure) return <Fatal lang={lang} text={failure} />;
  if (!result) return <main className="loading">{t(lang, "app.loading")}</main>;
  if (result.state === "pack_error") {
    return (
      <>
        <div className="topbar">{bar}</div>
        <PackErrorScreen lang={lang} problem={result.problem} />
      </>
    );
  }
  return (
    <PermissionsContext.Provider value={permissions}>
      {/* Field laptop mode (`outpost --unit CALLSIGN`): the console is that unit. */}
      {result.init.field_unit ? (
        <FieldConsole init={result.init} authBar={bar} onSignIn={signIn} onSettings={setSaved} />
      ) : (
        <Console init={result.init} authBar={bar} onSignIn={signIn} onSettings={setSaved} />
      )}
    </PermissionsContext.Provider>
  );
}
