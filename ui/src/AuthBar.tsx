// The signed-in person in the top bar (issue 6): who, their role, whether the sign-in was
// online, and the change-password, lock and sign-out buttons.

import { useState } from "react";
import type { AuthStatus } from "./bindings";
import { permissionsOf, roleKey } from "./auth";
import { type Lang, t } from "./i18n";
import { ChangePasswordForm } from "./SignIn";

export function AuthBar({
  lang,
  status,
  busy,
  onLock,
  onSignOut,
  onStatus,
}: {
  lang: Lang;
  status: AuthStatus;
  busy?: boolean;
  onLock: () => void;
  onSignOut: () => void;
  /** A password change answered with a new status; without it there is no change button. */
  onStatus?: (s: AuthStatus) => void;
}) {
  const [changing, setChanging] = useState(false);
  const u = status.user;
  if (!u) return null;
  const key = roleKey(u.role);
  const mode = u.online ? "online" : status.server_url ? "offline" : "local";
  const modeKey = mode === "online" ? "auth.bar.online" : mode === "offline" ? "auth.bar.offline" : "auth.bar.local";
  const modeLong = mode === "online" ? "auth.bar.onlineLong" : mode === "offline" ? "auth.bar.offlineLong" : "auth.bar.localLong";
  return (
    <span id="auth-bar" className="auth-bar" data-user={u.user} data-role={u.role} data-sign-in={mode}>
      <span className="auth-who" title={u.user}>
        {u.display_name}
      </span>
      <span className="auth-role">{key ? t(lang, key) : u.role}</span>
      {permissionsOf(u).readOnly && <span className="auth-readonly">{t(lang, "auth.bar.readOnly")}</span>}
      <span className={`auth-mode auth-mode-${mode}`} title={t(lang, modeLong)}>
        {t(lang, modeKey)}
      </span>
      {onStatus && (
        <button type="button" id="change-password" onClick={() => setChanging(true)} disabled={busy}>
          {t(lang, "auth.bar.changePassword")}
        </button>
      )}
      {onStatus && changing && (
        <div className="auth-screen change-password-overlay" role="dialog" aria-modal="true" aria-label={t(lang, "auth.change.title")}>
          <div className="auth-card">
            <ChangePasswordForm
              lang={lang}
              status={status}
              onStatus={(s) => {
                setChanging(false);
                onStatus(s);
              }}
              onCancel={() => setChanging(false)}
            />
          </div>
        </div>
      )}
      <button type="button" id="lock-console" onClick={onLock} disabled={busy}>
        {t(lang, "auth.bar.lock")}
      </button>
      <button type="button" id="sign-out" onClick={onSignOut} disabled={busy}>
        {t(lang, "auth.bar.signOut")}
      </button>
    </span>
  );
}
