import type { IncidentSummary } from "../bindings";
import { countByStatus, INCIDENT_STATUSES, sortQueue } from "../domain";
import { formatClock, formatDateTime, secondsSince } from "../format";
import { type Lang, label, t } from "../i18n";

export interface IncidentQueueProps {
  lang: Lang;
  now: number;
  incidents: IncidentSummary[];
  selectedId: string | null;
  showClosed: boolean;
  onShowClosed: (v: boolean) => void;
  onOpen: (id: string) => void;
  /** Incidents with an open sync conflict: marked in their row. */
  conflicted?: ReadonlySet<string>;
}

/** The incident queue: priority then age, counts per status; a row opens the incident. */
export function IncidentQueue(p: IncidentQueueProps) {
  const counts = countByStatus(p.incidents);
  const rows = sortQueue(p.incidents).filter((i) => p.showClosed || i.status !== "closed");
  return (
    <section className="panel queue" aria-labelledby="queue-title">
      <header className="panel-head">
        <h2 id="queue-title">{t(p.lang, "queue.title")}</h2>
        <ul className="counts" aria-label={t(p.lang, "detail.status")}>
          {INCIDENT_STATUSES.map((s) => (
            <li key={s} className={`count istatus-${s}`} data-status-count={s}>
              <span className="count-n">{counts[s]}</span> {label.incidentStatus(p.lang, s)}
            </li>
          ))}
        </ul>
        <label className="toggle">
          <input type="checkbox" checked={p.showClosed} onChange={(e) => p.onShowClosed(e.target.checked)} />
          {t(p.lang, "queue.showClosed")}
        </label>
      </header>
      {rows.length === 0 ? (
        <p className="empty">{t(p.lang, "queue.empty")}</p>
      ) : (
        <ol className="queue-rows">
          {rows.map((i) => {
            const eyeCatch = i.priority === "P1" && !i.acknowledged && i.status !== "closed";
            return (
              <li key={i.id}>
                <button
                  type="button"
                  className={`queue-row prio-${i.priority} istatus-${i.status}${i.id === p.selectedId ? " selected" : ""}${eyeCatch ? " unack-p1" : ""}`}
                  data-incident-id={i.id}
                  aria-current={i.id === p.selectedId ? "true" : undefined}
                  onClick={() => p.onOpen(i.id)}
                >
                  <span className={`prio-badge prio-${i.priority}`}>{i.priority}</span>
                  <span className="queue-main">
                    <span className="queue-line1">
                      <strong>{label.incidentType(p.lang, i.incident_type)}</strong>
                      <span className="muted"> #{i.number}</span>
                      {p.conflicted?.has(i.id) && (
                        <span className="conflict-mark" data-conflict-mark title={t(p.lang, "conflict.markTitle")}>
                          {t(p.lang, "conflict.mark")}
                        </span>
                      )}
                      {!i.acknowledged && i.status !== "closed" && (
                        <span className="unack" title={t(p.lang, "queue.unack")}>
                          ●
                        </span>
                      )}
                    </span>
                    <span className="queue-line2 muted">{i.address}</span>
                    <span className="queue-line3">
                      <span className={`istatus istatus-${i.status}`}>{label.incidentStatus(p.lang, i.status)}</span>
                      {i.assigned.length > 0 && <span className="assigned"> {i.assigned.join(" ")}</span>}
                    </span>
                  </span>
                  <span className="queue-age" title={`${t(p.lang, "queue.age")} · ${formatDateTime(i.created_at, p.lang)}`}>
                    {formatClock(secondsSince(i.created_at, p.now))}
                  </span>
                </button>
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}
