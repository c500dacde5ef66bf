import type { Facility, UnitStatus, UnitView } from "../bindings";
import { usePermissions } from "../auth";
import { allowedNext, isCommitted, isStale } from "../domain";
import { formatClock, formatDateTime, formatLatLon, secondsSince } from "../format";
import { type Lang, label, t } from "../i18n";
import { facilityName } from "../map/features";
import { CloseButton } from "./CloseButton";
import { FixAge } from "./FixAge";

export interface UnitCardProps {
  lang: Lang;
  now: number;
  unit: UnitView;
  facilities: Facility[];
  staleAfterS: number;
  busy: boolean;
  onSetStatus: (to: UnitStatus) => void;
  onOpenIncident: (id: string) => void;
  /** Opens track playback for this unit. */
  onTrack?: () => void;
  onDismiss: () => void;
}

/** A unit's card: status with the legal next statuses as buttons, and its latest fix. */
export function UnitCard({ lang, now, unit: u, facilities, staleAfterS, busy, onSetStatus, onOpenIncident, onTrack, onDismiss }: UnitCardProps) {
  const can = usePermissions();
  const home = facilities.find((f) => f.id === u.home_station);
  const stale = isStale(u, now, staleAfterS);
  return (
    <section id="unit-card" className="panel card" aria-labelledby="unit-title" data-unit-id={u.id}>
      <header className="panel-head">
        <h2 id="unit-title">
          {u.callsign} <span className="muted">{label.unitKind(lang, u.kind)}</span>
        </h2>
        <CloseButton label={t(lang, "detail.closePanel")} onClick={onDismiss} />
      </header>
      <dl className="fields">
        <dt>{t(lang, "board.status")}</dt>
        <dd>
          <span className={`ustatus ustatus-${u.status}`} data-unit-status={u.status}>
            {label.unitStatus(lang, u.status)}
          </span>{" "}
          <span className="num">{formatClock(secondsSince(u.status_since, now))}</span>
        </dd>
        <dt>{t(lang, "board.home")}</dt>
        <dd>{home ? facilityName(home, lang) : (u.home_station ?? "—")}</dd>
        <dt>{t(lang, "board.incident")}</dt>
        <dd>
          {u.incident_id ? (
            <button type="button" className="link" onClick={() => onOpenIncident(u.incident_id as string)}>
              #{u.incident_number ?? u.incident_id}
            </button>
          ) : (
            "—"
          )}
        </dd>
        <dt>{t(lang, "unit.position")}</dt>
        <dd className={stale ? "stale" : undefined}>
          {u.fix ? (
            <>
              {formatLatLon(u.fix.position.lat, u.fix.position.lon)}
              <br />
              {formatDateTime(u.fix.fix_time, lang)} (<FixAge lang={lang} now={now} fix={u.fix} staleAfterS={staleAfterS} />)
              {stale && ` · ${t(lang, "board.stale")}`}
            </>
          ) : (
            t(lang, "board.noFix")
          )}
        </dd>
        {u.fix?.heading_deg != null && (
          <>
            <dt>{t(lang, "unit.heading")}</dt>
            <dd className="num">{Math.round(u.fix.heading_deg)}°</dd>
          </>
        )}
        {u.fix?.speed_mps != null && (
          <>
            <dt>{t(lang, "unit.speed")}</dt>
            <dd className="num">{Math.round(u.fix.speed_mps * 3.6)} km/h</dd>
          </>
        )}
      </dl>
      {can.unitStatus(u.id) && (
        <>
      <h3>{t(lang, "unit.setStatus")}</h3>
      <div className="actions status-actions">
        {allowedNext(u.status).map((to) => (
          <button key={to} type="button" disabled={busy} data-status-to={to} className={`ustatus-btn ustatus-${to}`} onClick={() => onSetStatus(to)}>
            {isCommitted(u.status) && to === "available" ? t(lang, "unit.clear") : label.unitStatus(lang, to)}
          </button>
        ))}
      </div>
        </>
      )}
      {onTrack && (
        <div className="actions status-actions">
          <button type="button" id="unit-track" onClick={onTrack}>
            {t(lang, "unit.track")}
          </button>
        </div>
      )}
    </section>
  );
}

export interface FacilityCardProps {
  lang: Lang;
  facility: Facility;
  units: UnitView[];
  onOpenUnit: (id: string) => void;
  onDismiss: () => void;
}

/** A station, post or checkpoint with the units based there. */
export function FacilityCard({ lang, facility: f, units, onOpenUnit, onDismiss }: FacilityCardProps) {
  const based = units.filter((u) => u.home_station === f.id);
  return (
    <section id="facility-card" className="panel card" aria-labelledby="facility-title">
      <header className="panel-head">
        <h2 id="facility-title">
          {facilityName(f, lang)} <span className="muted">{label.facilityKind(lang, f.kind)}</span>
        </h2>
        <CloseButton label={t(lang, "detail.closePanel")} onClick={onDismiss} />
      </header>
      <dl className="fields">
        <dt>{t(lang, "detail.location")}</dt>
        <dd className="num">{formatLatLon(f.position.lat, f.position.lon)}</dd>
        <dt>{t(lang, "board.title")}</dt>
        <dd>
          {based.length === 0
            ? "—"
            : based.map((u) => (
                <button key={u.id} type="button" className="link" onClick={() => onOpenUnit(u.id)}>
                  {u.callsign}{" "}
                </button>
              ))}
        </dd>
      </dl>
    </section>
  );
}
