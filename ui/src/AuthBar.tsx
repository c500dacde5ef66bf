// The signed-in person in the top bar (issue 6): who, their role, whether the sign-in was
// online, and the lock and sign-out buttons.

import type { AuthStatus } from "./bindings";
import { permissionsOf, roleKey } from "./auth";
import { type Lang, t } from "./i18n";

export function AuthBar({
  lang,
  status,
  busy,
  onLock,
  onSignOut,
}: {
  lang: Lang;
  status: AuthStatus;
  busy?: boolean;
  onLock: () => void;
  onSignOut: () => void;
}) {
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
      <button type="button" id="lock-console" onClick={onLock} disabled={busy}>
        {t(lang, "auth.bar.lock")}
      </button>
      <button type="button" id="sign-out" onClick={onSignOut} disabled={busy}>
        {t(lang, "auth.bar.signOut")}
      </button>
    </span>
  );
}
