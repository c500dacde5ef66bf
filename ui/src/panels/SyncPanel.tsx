import { useMemo, useState } from "react";
import type { ConflictView, IncidentSummary, ParkedOp, SyncStatus, UnitView } from "../bindings";
import { formatAge, formatDateTime, secondsSince } from "../format";
import { type Lang, label, t } from "../i18n";
import { agoText, conflictExplanation, conflictSubject, indicator, LANES, type SideContext, sideText } from "../sync";
import { CloseButton } from "./CloseButton";

export interface SyncPanelProps {
  lang: Lang;
  now: number;
  status: SyncStatus | null;
  conflicts: ConflictView[];
  parked: ParkedOp[];
  /** The live picture, to name the incidents and units in the sides. */
  incidents: IncidentSummary[];
  units: UnitView[];
  busy: boolean;
  /** Keeps one side of a conflict; `note` may be empty. */
  onKeep: (conflictId: string, keepOpId: string, note: string) => void;
  onOpenIncident: (id: string) => void;
  onOpenUnit: (id: string) => void;
  onDismiss: () => void;
}

/** The sync panel: the connection in detail, the open conflicts, and the ops the server refused. */
export function SyncPanel(p: SyncPanelProps) {
  const ctx: SideContext = useMemo(
    () => ({ incidents: new Map(p.incidents.map((i) => [i.id, i])), units: new Map(p.units.map((u) => [u.id, u])) }),
    [p.incidents, p.units],
  );
  return (
    <section id="sync-panel" className="panel card" aria-labelledby="sync-title">
      <header className="panel-head">
        <h2 id="sync-title">{t(p.lang, "sync.title")}</h2>
        <CloseButton label={t(p.lang, "detail.closePanel")} onClick={p.onDismiss} />
      </header>
      {p.status && <StatusDetails lang={p.lang} now={p.now} status={p.status} />}
      <h3 id="conflicts-title">
        {t(p.lang, "conflict.title")} {p.conflicts.length > 0 && <span className="sync-badge badge-conflicts num">{p.conflicts.length}</span>}
      </h3>
      {p.conflicts.length === 0 ? (
        <p className="muted" id="no-conflicts">
          {t(p.lang, "conflict.none")}
        </p>
      ) : (
        <ul className="conflicts" aria-labelledby="conflicts-title">
          {p.conflicts.map((c) => (
            <ConflictItem key={c.id} {...p} ctx={ctx} conflict={c} />
          ))}
        </ul>
      )}
      <h3 id="parked-title">
        {t(p.lang, "parked.title")} {p.parked.length > 0 && <span className="sync-badge badge-parked num">{p.parked.length}</span>}
      </h3>
      {p.parked.length === 0 ? (
        <p className="muted">{t(p.lang, "parked.none")}</p>
      ) : (
        <>
          <p className="small muted">{t(p.lang, "parked.explain")}</p>
          <ul id="parked-ops" className="parked" aria-labelledby="parked-title">
            {p.parked.map((o) => (
              <li key={o.op_id} data-parked-op={o.op_id}>
                <div>
                  <span className="lane-tag">{label.lane(p.lang, o.lane)}</span> <strong>{o.summary}</strong>{" "}
                  <span className="muted small">{o.kind}</span>
                </div>
                <div className="small muted">
                  <time dateTime={o.written_at}>{formatDateTime(o.written_at, p.lang)}</time>
                </div>
                <div className="parked-reason" data-parked-reason>
                  {t(p.lang, "parked.reason")}: {o.reason}
                </div>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

function StatusDetails({ lang, now, status: s }: { lang: Lang; now: number; status: SyncStatus }) {
  const ind = indicator(lang, s, now);
  if (s.state === "disabled") {
    return (
      <div className={`sync-summary tone-${ind.tone}`} data-sync-summary={s.state}>
        <p>
          <strong>{ind.text}</strong>
        </p>
        <p className="small muted">{t(lang, "sync.aloneHint")}</p>
      </div>
    );
  }
  return (
    <dl className={`fields sync-summary tone-${ind.tone}`} data-sync-summary={s.state}>
      <dt>{t(lang, "sync.state")}</dt>
      <dd>
        <strong>{ind.text}</strong>
        {s.state === "offline" && s.offline_since && (
          <span className="muted"> ({t(lang, "sync.offlineFor", { age: formatAge(secondsSince(s.offline_since, now), lang) })})</span>
        )}
      </dd>
      <dt>{t(lang, "sync.server")}</dt>
      <dd className="num">{s.server_url ?? "—"}</dd>
      <dt>{t(lang, "sync.lastSyncLabel")}</dt>
      <dd>
        {s.last_sync ? (
          <>
            <time dateTime={s.last_sync}>{formatDateTime(s.last_sync, lang)}</time> <span className="muted">({agoText(lang, s.last_sync, now)})</span>
          </>
        ) : (
          t(lang, "sync.never")
        )}
      </dd>
      <dt>{t(lang, "sync.pending")}</dt>
      <dd>
        <ul className="lane-counts">
          {LANES.map((l) => (
            <li key={l} data-lane={l} className={s.pending[l] > 0 ? "nonzero" : undefined}>
              {label.lane(lang, l)} <span className="num">{s.pending[l]}</span>
            </li>
          ))}
        </ul>
      </dd>
      {s.last_error && s.state !== "online" && (
        <>
          <dt>{t(lang, "sync.lastError")}</dt>
          <dd className="sync-error" data-sync-error>
            {s.last_error}
          </dd>
        </>
      )}
      {s.deferred > 0 && (
        <>
          <dt>{t(lang, "sync.deferred")}</dt>
          <dd data-sync-deferred>{t(lang, "sync.deferredHint", { n: s.deferred })}</dd>
        </>
      )}
    </dl>
  );
}

function ConflictItem(p: SyncPanelProps & { conflict: ConflictView; ctx: SideContext }) {
  const c = p.conflict;
  const [note, setNote] = useState("");
  const noteId = `conflict-note-${c.id}`;
  return (
    <li className={`conflict kind-${c.kind}`} data-conflict-id={c.id} data-conflict-kind={c.kind}>
      <div className="conflict-head">
        <strong>{label.conflictKind(p.lang, c.kind)}</strong>
        {c.incident_id && (
          <button type="button" className="link" onClick={() => p.onOpenIncident(c.incident_id as string)}>
            #{c.incident_number ?? c.incident_id}
          </button>
        )}
        {c.unit_id && (
          <button type="button" className="link" onClick={() => p.onOpenUnit(c.unit_id as string)}>
            {c.callsign ?? c.unit_id}
          </button>
        )}
        {!c.incident_id && !c.unit_id && <span>{conflictSubject(c)}</span>}
      </div>
      <p className="small muted">{conflictExplanation(p.lang, c)}</p>
      <ol className="conflict-sides">
        {c.sides.map((s) => (
          <li key={s.op_id} className={s.shown ? "side-shown" : undefined} data-conflict-side={s.op_id} data-shown={s.shown}>
            <div className="side-value" data-side-value>
              {sideText(p.lang, c, s, p.ctx)}
            </div>
            <div className="small muted">
              {t(p.lang, "conflict.by", { user: s.user, time: formatDateTime(s.at, p.lang) })}
              {s.shown && <span className="shown-tag"> · {t(p.lang, "conflict.shown")}</span>}
            </div>
            <button type="button" className="primary" data-keep-op={s.op_id} disabled={p.busy} onClick={() => p.onKeep(c.id, s.op_id, note)}>
              {t(p.lang, "conflict.keep")}
            </button>
          </li>
        ))}
      </ol>
      <label className="small muted" htmlFor={noteId}>
        {t(p.lang, "conflict.note")}
      </label>
      <input id={noteId} className="conflict-note" value={note} onChange={(e) => setNote(e.target.value)} />
    </li>
  );
}
