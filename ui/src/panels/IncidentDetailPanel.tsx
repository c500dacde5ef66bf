import { useState } from "react";
import { usePermissions } from "../auth";
import { type Disposition, type IncidentDetail, type IncidentType, MAX_TEXT_CHARS, type Priority, type UnitStatus, type UnitView } from "../bindings";
import { allowedNext, assignableUnits, DISPOSITIONS, distanceM, INCIDENT_TYPES, PRIORITIES } from "../domain";
import { formatAge, formatDateTime, formatLatLon } from "../format";
import { type Lang, label, t } from "../i18n";
import { describeEvent } from "./timeline";
import { CloseButton } from "./CloseButton";
import { FixAge } from "./FixAge";
import { ClosestUnits } from "./ClosestUnits";
import type { ClosestUnits as ClosestUnitsView } from "../bindings";
import { fixAge } from "../positions";

/** Everything the detail panel can ask the backend to do. */
export interface IncidentActions {
  acknowledge: () => void;
  setType: (t: IncidentType) => void;
  setPriority: (p: Priority) => void;
  assign: (unitId: string) => void;
  release: (unitId: string) => void;
  setUnitStatus: (unitId: string, to: UnitStatus) => void;
  addNote: (text: string) => Promise<boolean>;
  close: (d: Disposition, summary: string) => void;
  dismiss: () => void;
}

export interface IncidentDetailPanelProps {
  lang: Lang;
  /** The clock, ms (fix ages tick with it). */
  now: number;
  /** `Settings.stale_after_s`: colours the assigned units' fix ages. */
  staleAfterS: number;
  detail: IncidentDetail;
  units: UnitView[];
  busy: boolean;
  actions: IncidentActions;
  /** Open sync conflicts about this incident (0 or absent: no banner). */
  conflicts?: number;
  /** Opens the sync panel. */
  onReviewConflicts?: () => void;
  /**
   * The closest available units by road ETA (null while computed) and how to dispatch one
   * (the assign action; true when it went through). Absent: the section is not shown.
   */
  closest?: { data: ClosestUnitsView | null; dispatch: (unitId: string) => Promise<boolean> };
}

/** The incident card: fields, assigned units, actions and the timeline. */
export function IncidentDetailPanel({ lang, now, staleAfterS, detail, units, busy, actions, conflicts = 0, onReviewConflicts, closest }: IncidentDetailPanelProps) {
  const s = detail.summary;
  const closed = s.status === "closed";
  const [note, setNote] = useState("");
  const [pick, setPick] = useState("");
  const [disposition, setDisposition] = useState<Disposition>("resolved");
  const [summary, setSummary] = useState("");
  const candidates = assignableUnits(units, s.location);
  const unitsById = new Map(units.map((u) => [u.id, u]));
  const active = detail.assignments.filter((a) => a.released_at === null);
  const past = detail.assignments.filter((a) => a.released_at !== null);
  // What the signed-in role may write here (the backend refuses the rest anyway).
  const can = usePermissions();
  const mayEdit = can.incidents;
  const mayNote = can.note(detail.assignments.map((a) => a.unit_id));

  return (
    <section id="incident-detail" className={`panel detail prio-${s.priority}`} aria-labelledby="detail-title" data-incident-id-detail={s.id}>
      <header className="panel-head">
        <h2 id="detail-title">
          <span className={`prio-badge prio-${s.priority}`}>{s.priority}</span> {label.incidentType(lang, s.incident_type)}{" "}
          <span className="muted">#{s.number}</span>
        </h2>
        <CloseButton label={t(lang, "detail.closePanel")} onClick={actions.dismiss} />
      </header>

      <div className="detail-status">
        <span className={`istatus istatus-${s.status}`}>{label.incidentStatus(lang, s.status)}</span>
        {!closed &&
          (s.acknowledged || !mayEdit ? (
            s.acknowledged && 
<span className="ack-done">✓ {t(lang, "detail.acknowledged")}</span>
          ) : (
            <button type="button" className="primary" id="incident-acknowledge" disabled={busy} onClick={actions.acknowledge}>
              {t(lang, "detail.acknowledge")}
            </button>
          ))}
      </div>

      {conflicts > 0 && (
        <div id="incident-conflicts" className="conflict-banner" role="note">
          <span>{t(lang, "conflict.banner", { n: conflicts })}</span>
          {onReviewConflicts && (
            <button type="button" onClick={onReviewConflicts}>
              {t(lang, "conflict.review")}
            </button>
          )}
        </div>
      )}

      <dl className="fields">
        <dt>{t(lang, "detail.type")}</dt>
        <dd>
          <select
            aria-label={t(lang, "detail.type")}
            value={s.incident_type}
            disabled={closed || busy || !mayEdit}
            onChange={(e) => actions.setType(e.target.value as IncidentType)}
          >
            {INCIDENT_TYPES.map((it) => (
              <option key={it} value={it}>
                {label.incidentType(lang, it)}
              </option>
            ))}
          </select>
        </dd>
        <dt>{t(lang, "detail.priority")}</dt>
        <dd>
          <select
            aria-label={t(lang, "detail.priority")}
            value={s.priority}
            disabled={closed || busy || !mayEdit}
            onChange={(e) => actions.setPriority(e.target.value as Priority)}
          >
            {PRIORITIES.map((p) => (
              <option key={p} value={p}>
                {label.priority(lang, p)}
              </option>
            ))}
          </select>
        </dd>
        <dt>{t(lang, "detail.address")}</dt>
        <dd data-field="address">{s.address || "—"}</dd>
        <dt>{t(lang, "detail.location")}</dt>
        <dd className="num">{formatLatLon(s.location.lat, s.location.lon)}</dd>
        <dt>{t(lang, "detail.description")}</dt>
        <dd className="description">{detail.description || "—"}</dd>
        <dt>{t(lang, "detail.createdAt")}</dt>
        <dd>
          {formatDateTime(s.created_at, lang)} · {detail.created_by}
        </dd>
        {detail.closed_at && (
          <>
            <dt>{t(lang, "detail.closedAt")}</dt>
            <dd>
              {formatDateTime(detail.closed_at, lang)}
              {detail.disposition && ` · ${label.disposition(lang, detail.disposition)}`}
            </dd>
          </>
        )}
      </dl>

      {!closed && closest && mayEdit && (
        <ClosestUnits lang={lang} now={now} staleAfterS={staleAfterS} closest={closest.data} busy={busy} onDispatch={closest.dispatch} />
      )}

      <h3>{t(lang, "detail.assigned")}</h3>
      {active.length === 0 && <p className="muted">{t(lang, "detail.noneAssigned")}</p>}
      <ul className="assignments">
        {active.map((a) => {
          const u = unitsById.get(a.unit_id);
          const status = u?.status ?? a.unit_status;
          return (
            <li key={a.id} data-assignment-unit={a.unit_id}>
              <strong>{a.callsign}</strong>{" "}
              <span className={`ustatus ustatus-${status}`}>{label.unitStatus(lang, status)}</span>{" "}
              <span className="unit-pos small">
                {u?.fix && <span className="muted">{t(lang, "detail.distanceKm", { km: (distanceM(u.fix.position, s.location) / 1000).toFixed(1) })} · </span>}
                <FixAge lang={lang} now={now} fix={u?.fix} staleAfterS={staleAfterS} />
              </span>
              <span className="actions">
                {allowedNext(status)
                  .filter((to) => to !== "available" && can.unitStatus(a.unit_id))
                  .map((to) => (
                    <button key={to} type="button" disabled={busy} data-status-to={to} onClick={() => actions.setUnitStatus(a.unit_id, to)}>
                      {label.unitStatus(lang, to)}
                    </button>
                  ))}
                {(mayEdit || can.unitStatus(a.unit_id)) && (
                  <button type="button" disabled={busy} data-release={a.unit_id} onClick={() => actions.release(a.unit_id)}>
                    {t(lang, "detail.release")}
                  </button>
                )}
              </span>
            </li>
          );
        })}
        {past.map((a) => (
          <li key={a.id} className="muted">
            {a.callsign} · {t(lang, "detail.released")} {a.released_at ? formatDateTime(a.released_at, lang) : ""}
          </li>
        ))}
      </ul>
      {!closed && mayEdit && (
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            if (pick) {
              actions.assign(pick);
              setPick("");
            }
          }}
        >
          <select id="assign-unit" aria-label={t(lang, "detail.assignPick")} value={pick} onChange={(e) => setPick(e.target.value)} disabled={busy}>
            <option value="">{candidates.length ? t(lang, "detail.assignPick") : t(lang, "detail.noAvailable")}</option>
            {candidates.map((u) => (
              <option key={u.id} value={u.id}>
                {u.callsign} · {label.unitKind(lang, u.kind)}
                {u.fix
                  ? ` · ${t(lang, "detail.distanceKm", { km: (distanceM(u.fix.position, s.location) / 1000).toFixed(1) })} · ${t(lang, "age.ago", { age: formatAge(fixAge(u.fix, now) ?? 0, lang) })}`
                  : ` · ${t(lang, "age.none")}`}
              </option>
            ))}
          </select>
          <button type="submit" id="assign-submit" disabled={busy || !pick}>
            {t(lang, "detail.assign")}
          </button>
        </form>
      )}

      {!closed && (mayNote || mayEdit) && (
        <>
          {mayNote && (
          <form
            className="stack"
            onSubmit={(e) => {
              e.preventDefault();
              if (!note.trim()) return;
              void actions.addNote(note.trim()).then((ok) => ok && setNote(""));
            }}
          >
            <label htmlFor="incident-note">{t(lang, "detail.note")}</label>
            <textarea id="incident-note" rows={2} maxLength={MAX_TEXT_CHARS} value={note} onChange={(e) => setNote(e.target.value)} />
            <button type="submit" id="note-submit" disabled={busy || !note.trim()}>
              {t(lang, "detail.addNote")}
            </button>
          </form>
          )}
          {mayEdit && (
          <form
            className="stack close-form"
            onSubmit={(e) => {
              e.preventDefault();
              actions.close(disposition, summary.trim());
            }}
          >
            <h3>{t(lang, "detail.close")}</h3>
            <label htmlFor="incident-disposition">{t(lang, "detail.disposition")}</label>
            <select id="incident-disposition" value={disposition} onChange={(e) => setDisposition(e.target.value as Disposition)}>
              {DISPOSITIONS.map((d) => (
                <option key={d} value={d}>
                  {label.disposition(lang, d)}
                </option>
              ))}
            </select>
            <label htmlFor="incident-summary">{t(lang, "detail.summary")}</label>
            <input id="incident-summary" maxLength={MAX_TEXT_CHARS} value={summary} onChange={(e) => setSummary(e.target.value)} />
            <button type="submit" id="incident-close" className="danger" disabled={busy}>
              {t(lang, "detail.close")}
            </button>
          </form>
          )}
        </>
      )}

      <h3>{t(lang, "detail.timeline")}</h3>
      <ol className="timeline">
        {detail.timeline.map((e) => (
          <li key={e.id} data-timeline-entry={e.event.kind}>
            <time dateTime={e.at}>{formatDateTime(e.at, lang)}</time> <span className="user">{e.user}</span>
            <div>{describeEvent(lang, e.event)}</div>
          </li>
        ))}
      </ol>
    </section>
  );
}
