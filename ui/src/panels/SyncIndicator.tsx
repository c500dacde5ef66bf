import type { SyncStatus } from "../bindings";
import { type Lang, t } from "../i18n";
import { indicator } from "../sync";

export interface SyncIndicatorProps {
  lang: Lang;
  now: number;
  /** `null` until the first status arrives. */
  status: SyncStatus | null;
  /** The status could not be read (shown instead of a stale state). */
  failed: boolean;
  open: boolean;
  onClick: () => void;
  /** Opens the sign-in flow (lock, then sign in online); its button shows while the server wants a sign-in. */
  onSignIn?: () => void;
}

/**
 * The connection indicator in the top bar, readable at a glance: a coloured dot and words
 * (在线 / 同步中 / 离线 自 HH:MM / 工作在单机模式), pending ops per lane, the last sync, and red
 * and amber count badges for conflicts and refused ops. A click opens the sync panel. While the
 * server wants an online sign-in (需要联网登录以同步) a button beside it opens the sign-in flow.
 */
export function SyncIndicator(p: SyncIndicatorProps) {
  const s = p.status;
  const ind = s ? indicator(p.lang, s, p.now) : null;
  const tone = p.failed ? "offline-red" : (ind?.tone ?? "alone");
  const text = p.failed ? t(p.lang, "sync.statusUnavailable") : (ind?.text ?? "…");
  const signIn = !p.failed && s?.state === "sign_in_required" && p.onSignIn;
  const indicatorButton = (
    <button
      type="button"
      id="sync-indicator"
      className={`sync-indicator tone-${tone}`}
      data-sync-state={p.failed ? "unknown" : (s?.state ?? "loading")}
      data-tone={tone}
      aria-expanded={p.open}
      aria-controls="sync-panel"
      title={[t(p.lang, "sync.openPanel"), ind?.lanes, ind?.lastSync, s?.last_error].filter(Boolean).join("\n")}
      onClick={p.onClick}
    >
      <span className="sync-dot" aria-hidden="true" />
      <span className="sync-words">
        <span className="sync-text" data-sync-text>
          {text}
        </span>
        {ind && (ind.lanes || ind.lastSync) && (
          <span className="sync-sub small num">
            {ind.lanes && <span data-sync-lanes>{ind.lanes}</span>}
            {ind.lanes && ind.lastSync && " · "}
            {ind.lastSync && <span data-sync-last>{ind.lastSync}</span>}
          </span>
        )}
      </span>
      {s && s.conflicts > 0 && (
        <span id="conflict-badge" className="sync-badge badge-conflicts num" title={t(p.lang, "sync.conflictsN", { n: s.conflicts })}>
          {t(p.lang, "sync.conflictsBadge", { n: s.conflicts })}
        </span>
      )}
      {s && s.parked > 0 && (
        <span id="parked-badge" className="sync-badge badge-parked num" title={t(p.lang, "sync.parkedN", { n: s.parked })}>
          {t(p.lang, "sync.parkedBadge", { n: s.parked })}
        </span>
      )}
    </button>
  );
  if (!signIn) return indicatorButton;
  return (
    <>
      {indicatorButton}
      <button type="button" id="sync-sign-in" className="primary" title={t(p.lang, "sync.signInActionHint")} onClick={signIn}>
        {t(p.lang, "sync.signInAction")}
      </button>
    </>
  );
}
