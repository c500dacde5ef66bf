import { useState } from "react";
import type { DeviceView, LatLon, UnitView } from "../bindings";
import { formatDateTime, formatLatLon } from "../format";
import { type Lang, label, t } from "../i18n";
import { CloseButton } from "./CloseButton";
import { FixAge } from "./FixAge";

export interface DevicesPanelProps {
  lang: Lang;
  now: number;
  /** `list_devices`: unbound first, then bound; null until the first answer. */
  devices: DeviceView[] | null;
  /** Why the list could not be read, if it could not. */
  error: string | null;
  /** The roster (bind targets; a bound device's position is its unit's). */
  units: UnitView[];
  staleAfterS: number;
  busy: boolean;
  /** Binds a device to a unit, or unbinds it (`unitId` null). */
  onBind: (deviceId: string, unitId: string | null) => void;
  /** Shows an unbound device's last fix on the map. */
  onShow: (at: LatLon) => void;
  onOpenUnit: (id: string) => void;
  onDismiss: () => void;
}

/**
 * The device registry: devices that report but are bound to no unit (kept, listed for binding,
 * not on the map as units) with source, name, last fix and its age, battery and report count,
 * each with a bind-to-unit select; then the bound devices with their unit and an unbind button.
 */
export function DevicesPanel(p: DevicesPanelProps) {
  const unbound = (p.devices ?? []).filter((d) => d.unit_id === null);
  const bound = (p.devices ?? []).filter((d) => d.unit_id !== null);
  const units = new Map(p.units.map((u) => [u.id, u]));
  return (
    <section id="devices-panel" className="panel card" aria-labelledby="devices-title">
      <header className="panel-head">
        <h2 id="devices-title">{t(p.lang, "dev.title")}</h2>
        <CloseButton label={t(p.lang, "detail.closePanel")} onClick={p.onDismiss} />
      </header>
      {p.error && (
        <p className="field-error" role="alert" id="devices-error">
          {t(p.lang, "dev.loadFailed")}: {p.error}
        </p>
      )}
      <h3 id="unbound-title">
        {t(p.lang, "dev.unbound")} {unbound.length > 0 && <span className="sync-badge badge-parked num">{unbound.length}</span>}
      </h3>
      {p.devices !== null && unbound.length === 0 ? (
        <p className="muted" id="no-unbound">
          {t(p.lang, "dev.noneUnbound")}
        </p>
      ) : (
        <>
          <p className="small muted">{t(p.lang, "dev.unboundHint")}</p>
          <ul className="devices" aria-labelledby="unbound-title" id="unbound-devices">
            {unbound.map((d) => (
              <UnboundDevice key={d.device_id} {...p} device={d} />
            ))}
          </ul>
        </>
      )}
      <h3 id="bound-title">{t(p.lang, "dev.bound")}</h3>
      {p.devices !== null && bound.length === 0 ? (
        <p className="muted">{t(p.lang, "dev.noneBound")}</p>
      ) : (
        <ul className="devices bound" aria-labelledby="bound-title" id="bound-devices">
          {bound.map((d) => {
            const u = d.unit_id ? units.get(d.unit_id) : undefined;
            return (
              <li key={d.device_id} data-device-id={d.device_id} data-bound-unit={d.unit_id ?? ""}>
                <div className="device-head">
                  <DeviceName device={d} />
                  {d.source && <span className="lane-tag">{label.deviceSource(p.lang, d.source)}</span>}
                  <span aria-hidden="true">→</span>
                  <button type="button" className="link callsign" onClick={() => d.unit_id && p.onOpenUnit(d.unit_id)}>
                    {d.callsign ?? d.unit_id}
                  </button>
                  {u && (
                    <span className="small" title={t(p.lang, "dev.unitFix")}>
                      <FixAge lang={p.lang} now={p.now} fix={u.fix} staleAfterS={p.staleAfterS} />
                    </span>
                  )}
                  {d.battery_pct !== null && <Battery pct={d.battery_pct} lang={p.lang} />}
                </div>
                <button type="button" data-unbind={d.device_id} disabled={p.busy} onClick={() => p.onBind(d.device_id, null)}>
                  {t(p.lang, "dev.unbind")}
                </button>
              </li>
            );
          })}
        </ul>
      )}
      <RegisterDevice {...p} />
    </section>
  );
}

/**
 * Binds a device by its id before its first report (the id read off the phone or the TAK
 * client, as Traccar registers devices): `bind_device` accepts an id it has not heard of.
 */
function RegisterDevice(p: DevicesPanelProps) {
  const [id, setId] = useState("");
  const [pick, setPick] = useState("");
  const trimmed = id.trim();
  return (
    <form
      id="register-device"
      className="register-device"
      onSubmit={(e) => {
        e.preventDefault();
        if (trimmed && pick) {
          p.onBind(trimmed, pick);
          setId("");
          setPick("");
        }
      }}
    >
      <h3 id="register-title">{t(p.lang, "dev.register")}</h3>
      <p className="small muted">{t(p.lang, "dev.registerHint")}</p>
      <div className="row">
        <input
          id="register-device-id"
          aria-label={t(p.lang, "dev.id")}
          placeholder={t(p.lang, "dev.id")}
          value={id}
          maxLength={128}
          disabled={p.busy}
          onChange={(e) => setId(e.target.value)}
        />
        <select aria-label={t(p.lang, "dev.bindTo")} id="register-device-unit" value={pick} disabled={p.busy} onChange={(e) => setPick(e.target.value)}>
          <option value="">{t(p.lang, "dev.bindTo")}</option>
          {p.units.map((u) => (
            <option key={u.id} value={u.id}>
              {u.callsign} · {label.unitKind(p.lang, u.kind)}
            </option>
          ))}
        </select>
        <button type="submit" className="primary" disabled={p.busy || !trimmed || !pick}>
          {t(p.lang, "dev.bind")}
        </button>
      </div>
    </form>
  );
}

function DeviceName({ device: d }: { device: DeviceView }) {
  return (
    <span className="device-name">
      {d.name && <strong>{d.name}</strong>} <span className={d.name ? "muted small num" : "num"}>{d.device_id}</span>
    </span>
  );
}

function Battery({ pct, lang }: { pct: number; lang: Lang }) {
  const low = pct < 20;
  return (
    <span className={`battery${low ? " battery-low" : ""}`} data-battery={Math.round(pct)}>
      {t(lang, "dev.battery")} <span className="num">{Math.round(pct)}%</span>
    </span>
  );
}

function UnboundDevice(p: DevicesPanelProps & { device: DeviceView }) {
  const d = p.device;
  const [pick, setPick] = useState("");
  const selectId = `bind-${d.device_id}`;
  return (
    <li data-device-id={d.device_id} className="unbound">
      <div className="device-head">
        <DeviceName device={d} />
        {d.source && <span className="lane-tag">{label.deviceSource(p.lang, d.source)}</span>}
        {d.battery_pct !== null && <Battery pct={d.battery_pct} lang={p.lang} />}
      </div>
      <dl className="fields device-fields">
        <dt>{t(p.lang, "dev.lastFix")}</dt>
        <dd data-device-fix>
          {d.last_fix ? (
            <>
              <button type="button" className="link num" title={t(p.lang, "dev.show")} onClick={() => d.last_fix && p.onShow(d.last_fix.position)}>
                {formatLatLon(d.last_fix.position.lat, d.last_fix.position.lon)}
              </button>{" "}
              <FixAge lang={p.lang} now={p.now} fix={d.last_fix} staleAfterS={p.staleAfterS} />
              <div className="small muted">{formatDateTime(d.last_fix.fix_time, p.lang)}</div>
            </>
          ) : (
            t(p.lang, "board.noFix")
          )}
        </dd>
        <dt>{t(p.lang, "dev.reports")}</dt>
        <dd className="num" data-device-reports>
          {d.reports}
        </dd>
      </dl>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          if (pick) p.onBind(d.device_id, pick);
        }}
      >
        <select id={selectId} aria-label={`${t(p.lang, "dev.bindTo")} ${d.device_id}`} value={pick} disabled={p.busy} onChange={(e) => setPick(e.target.value)}>
          <option value="">{t(p.lang, "dev.bindTo")}</option>
          {p.units.map((u) => (
            <option key={u.id} value={u.id}>
              {u.callsign} · {label.unitKind(p.lang, u.kind)}
            </option>
          ))}
        </select>
        <button type="submit" className="primary" data-bind={d.device_id} disabled={p.busy || !pick}>
          {t(p.lang, "dev.bind")}
        </button>
      </form>
    </li>
  );
}
