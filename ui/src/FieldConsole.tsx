import { type ReactNode, useCallback, useEffect, useMemo, useState, useSyncExternalStore } from "react";
import { usePermissions } from "./auth";
import { acknowledgeAssignment, addNote, type ConsoleInit, type FieldView, fieldView, type GpsStatus, MAX_TEXT_CHARS, saveSettings, type Settings, setUnitStatus } from "./bindings";
import { resolveTheme } from "./Console";
import { distanceM } from "./domain";
import { errorText } from "./errors";
import { ACTION_STATUS, currentAction, enabledActions, FIELD_ACTIONS, type FieldAction } from "./field";
import { formatAge, formatDateTime, formatLatLon } from "./format";
import { useNow } from "./hooks";
import { type Lang, label, resolveLang, t } from "./i18n";
import { type FlyTarget, MapView } from "./map/MapView";
import { fixAge } from "./positions";
import { FixAge } from "./panels/FixAge";
import { SettingsPanel } from "./panels/SettingsPanel";
import { SyncIndicator } from "./panels/SyncIndicator";
import { SyncPanel } from "./panels/SyncPanel";
import { useLiveConsole } from "./live";
import { ConsoleStore } from "./store";
import { SyncStore } from "./sync";
import { fieldRoute } from "./bindings";
import { FIELD_ROUTE_MIN_GAP_MS, fieldRouteText, useThrottledQuery } from "./dispatch";
import { fieldRouteLines } from "./map/routes";

/** Ms between reads of the field view while nothing changes (the receiver's counters move alone). */
export const FIELD_POLL_MS = 2000;

const ACTION_LABEL: Record<FieldAction, "field.ack" | "field.enRoute" | "field.onScene" | "field.clear"> = {
  ack: "field.ack",
  en_route: "field.enRoute",
  on_scene: "field.onScene",
  clear: "field.clear",
};

/**
 * The field laptop (`outpost --unit CALLSIGN`): the console is that unit. Its own position in
 * the middle of the map, its assignment (address, notes, add a note), four large status
 * buttons as the domain allows them, the receiver's status line and the sync link (positions
 * written offline wait on disk and go out in order).
 */
export function FieldConsole({
  init,
  authBar,
  onSignIn,
  onSettings,
}: {
  init: ConsoleInit;
  authBar?: ReactNode;
  onSignIn?: () => void;
  /** Called with the settings after they are saved (the auth bar and lock screen follow the language). */
  onSettings?: (s: Settings) => void;
}) {
  const can = usePermissions();
  const store = useMemo(() => new ConsoleStore(), []);
  const state = useSyncExternalStore(store.subscribe, store.get);
  const syncStore = useMemo(() => new SyncStore(), []);
  const sync = useSyncExternalStore(syncStore.subscribe, syncStore.get);
  const [settings, setSettings] = useState<Settings>(init.settings);
  const now = useNow(1000);
  const lang: Lang = resolveLang(settings.language, navigator.language);
  const minute = Math.floor(now / 60000);
  const theme = useMemo(() => resolveTheme(settings.theme, new Date(minute * 60000)), [settings.theme, minute]);
  const [view, setView] = useState<FieldView | null>(null);
  const [viewError, setViewError] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState("");
  const [side, setSide] = useState<"assignment" | "sync" | "settings">("assignment");
  const [keepCentred, setKeepCentred] = useState(true);
  const [flyTo, setFlyTo] = useState<FlyTarget | null>(null);

  useLiveConsole(store, syncStore, lang, theme, setError);

  const readView = useCallback(
    () =>
      fieldView()
        .then((v) => {
          setView(v);
          setViewError(null);
        })
        .catch((e) => setViewError(errorText(e))),
    [],
  );
  useEffect(() => {
    void readView();
  }, [readView, state?.revision]);
  useEffect(() => {
    const id = setInterval(() => void readView(), FIELD_POLL_MS);
    return () => clearInterval(id);
  }, [readView]);

  const act = useCallback(
    async <T,>(f: () => Promise<T>): Promise<T | undefined> => {
      setBusy(true);
      try {
        const r = await f();
        setError(null);
        return r;
      } catch (e) {
        setError(errorText(e));
        return undefined;
      } finally {
        setBusy(false);
        void store.refresh();
        void readView();
      }
    },
    [store, readView],
  );

  const me = view?.unit ?? state?.units.find((u) => u.id === init.field_unit) ?? null;
  const myFix = me?.fix ?? null;
  // Centred on itself: at start, then on every new fix while "keep me centred" is on.
  const myAt = myFix?.position;
  const follow = useMemo(() => (keepCentred && myAt ? { lat: myAt.lat, lon: myAt.lon } : null), [keepCentred, myAt?.lat, myAt?.lon]);
  const firstFix = myFix !== null;
  useEffect(() => {
    if (myAt) setFlyTo({ at: myAt, seq: Date.now(), minZoom: 15 });
    // Once, when the first fix is known (later fixes are followed through `follow`).
  }, [firstFix]);

  const selection = useMemo(() => (init.field_unit ? { kind: "unit" as const, id: init.field_unit } : null), [init.field_unit]);
  const a = view?.assignment ?? null;
  const enabled = view ? enabledActions(view) : null;
  const current = view ? currentAction(view) : null;
  const ackAt = view?.acknowledged_at ?? null;
  // The route to the assignment (at most once a second, on every revision: the unit moves).
  const route = useThrottledQuery(a?.summary.id ?? null, state?.revision, () => fieldRoute(), FIELD_ROUTE_MIN_GAP_MS);
  const routeNow = route && route.incident_id === a?.summary.id ? route : null;
  const callsign = me?.callsign ?? "";
  const routes = useMemo(() => fieldRouteLines(routeNow, callsign), [routeNow, callsign]);
  const routeText = fieldRouteText(lang, routeNow);

  const press = (action: FieldAction) => {
    if (!view) return;
    if (action === "ack") void act(() => acknowledgeAssignment()).then((v) => v && setView(v));
    else void act(() => setUnitStatus({ unit_id: view.unit.id, to: ACTION_STATUS[action] }));
  };

  let column: React.ReactNode;
  if (side === "sync") {
    column = (
      <SyncPanel
        lang={lang}
        now={now}
        status={sync.status}
        conflicts={sync.conflicts}
        parked={sync.parked}
        incidents={state?.incidents ?? []}
        units={state?.units ?? []}
        busy={busy}
        onKeep={(conflictId, keepOpId, n) => void act(() => syncStore.resolve(conflictId, keepOpId, n))}
        onOpenIncident={() => setSide("assignment")}
        onOpenUnit={() => setSide("assignment")}
        onDismiss={() => setSide("assignment")}
      />
    );
  } else if (side === "settings") {
    column = (
      <SettingsPanel
        lang={lang}
        settings={settings}
        busy={busy}
        activeServerUrl={sync.status?.server_url}
        onSave={(s) =>
          void act(() => saveSettings(s)).then((saved) => {
            if (saved) {
              setSettings(saved);
              onSettings?.(saved);
              void syncStore.refresh();
              setSide("assignment");
            }
          })
        }
        onDismiss={() => setSide("assignment")}
      />
    );
  } else {
    column = (
      <section id="field-assignment" className="panel card field-assignment" aria-labelledby="field-assignment-title">
        <div className="field-buttons" role="group" aria-label={t(lang, "unit.setStatus")}>
          {FIELD_ACTIONS.map((action) => (
            <button
              key={action}
              type="button"
              className={`field-btn field-${action}${current === action ? " current" : ""}`}
              data-field-action={action}
              aria-pressed={current === action}
              disabled={busy || !enabled?.[action] || !(init.field_unit && can.unitStatus(init.field_unit))}
              onClick={() => press(action)}
            >
              {t(lang, ACTION_LABEL[action])}
              {action === "ack" && ackAt && <span className="field-btn-sub">{t(lang, "field.acked", { time: formatDateTime(ackAt, lang).slice(-8) })}</span>}
            </button>
          ))}
        </div>
        <header className="panel-head">
          <h2 id="field-assignment-title">{t(lang, "field.assignment")}</h2>
        </header>
        {!a ? (
          <p className="field-none" id="field-no-assignment">
            {t(lang, "field.noAssignment")}
          </p>
        ) : (
          <>
            <div className="field-incident" data-incident-id-field={a.summary.id}>
              <div>
                <span className={`prio-badge prio-${a.summary.priority}`}>{a.summary.priority}</span> <strong>{label.incidentType(lang, a.summary.incident_type)}</strong>{" "}
                <span className="muted">#{a.summary.number}</span> <span className={`istatus istatus-${a.summary.status}`}>{label.incidentStatus(lang, a.summary.status)}</span>
              </div>
              <div className="field-address" id="field-address">
                {a.summary.address || formatLatLon(a.summary.location.lat, a.summary.location.lon)}
              </div>
              {a.description && <div className="description">{a.description}</div>}
              <div className="small muted num">
                {formatLatLon(a.summary.location.lat, a.summary.location.lon)}
                {myFix && ` · ${t(lang, "detail.distanceKm", { km: (distanceM(myFix.position, a.summary.location) / 1000).toFixed(1) })}`}
              </div>
              {routeText && (
                <div className={`field-route${routeNow?.route ? "" : " problem"}`} id="field-route" data-route-eta-s={routeNow?.route?.eta_s ?? ""}>
                  {t(lang, "eta.fieldRoute", { text: routeText })}
                </div>
              )}
              <button type="button" className="link small" onClick={() => setFlyTo({ at: a.summary.location, seq: Date.now(), minZoom: 16 })}>
                {t(lang, "detail.location")}
              </button>
            </div>
            <h3>{t(lang, "field.notes")}</h3>
            <ol className="timeline field-notes" id="field-notes">
              {a.timeline.filter((e) => e.event.kind === "note").length === 0 && <li className="muted">{t(lang, "field.noNotes")}</li>}
              {a.timeline
                .filter((e) => e.event.kind === "note")
                .reverse()
                .map((e) => (
                  <li key={e.id} data-field-note>
                    <time dateTime={e.at}>{formatDateTime(e.at, lang)}</time> <span className="user">{e.user}</span>
                    <div>{e.event.kind === "note" ? e.event.text : ""}</div>
                  </li>
                ))}
            </ol>
            <form
              className="stack"
              onSubmit={(e) => {
                e.preventDefault();
                const text = note.trim();
                if (!text) return;
                void act(() => addNote({ incident_id: a.summary.id, text })).then((d) => d && setNote(""));
              }}
            >
              <label htmlFor="field-note">{t(lang, "detail.note")}</label>
              <textarea id="field-note" rows={2} maxLength={MAX_TEXT_CHARS} value={note} onChange={(e) => setNote(e.target.value)} />
              <button type="submit" id="field-note-submit" disabled={busy || !note.trim() || !can.note(init.field_unit ? [init.field_unit] : [])}>
                {t(lang, "detail.addNote")}
              </button>
            </form>
          </>
        )}
      </section>
    );
  }

  return (
    <div className={`console field-console theme-${theme}`} data-theme={theme} data-field-unit={init.field_unit ?? ""}>
      <header className="topbar">
        <h1 className="brand">{t(lang, "app.name")}</h1>
        <span className="field-me" id="field-me">
          <span className="muted">{t(lang, "field.title")}</span> <strong className="field-callsign">{me?.callsign ?? init.field_unit}</strong>{" "}
          {me && (
            <span className={`ustatus ustatus-${me.status}`} data-unit-status={me.status}>
              {label.unitStatus(lang, me.status)}
            </span>
          )}
        </span>
        {init.demo && (
          <span className="demo-banner" id="demo-banner" role="status" title={t(lang, "app.demo")}>
            {t(lang, "app.demo")}
          </span>
        )}
        <span className="topbar-gap" />
        <SyncIndicator
          lang={lang}
          now={now}
          status={sync.status}
          failed={sync.error !== null}
          open={side === "sync"}
          onClick={() => setSide(side === "sync" ? "assignment" : "sync")}
          onSignIn={onSignIn}
        />
        <button type="button" id="open-settings" onClick={() => setSide(side === "settings" ? "assignment" : "settings")}>
          {t(lang, "top.settings")}
        </button>
        {authBar}
        <span className="clock num" title={init.user}>
          {new Date(now).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { hourCycle: "h23" })}
        </span>
      </header>
      <GpsLine lang={lang} now={now} gps={view?.gps ?? null} staleAfterS={settings.stale_after_s} myFix={myFix} />
      {viewError && (
        <div id="refresh-error" className="error-bar" role="alert">
          <strong>{t(lang, "field.loadFailed")}:</strong> <span>{viewError}</span>
        </div>
      )}
      {error && (
        <div id="action-error" className="error-bar" role="alert">
          <strong>{t(lang, "error.backend")}:</strong> <span data-error-message>{error}</span>
          <button type="button" onClick={() => setError(null)}>
            {t(lang, "error.dismiss")}
          </button>
        </div>
      )}
      <div className="field-workspace">
        <aside className="field-side">{column}</aside>
        <div className="field-map">
          <MapView
            init={init}
            theme={theme}
            lang={lang}
            state={state}
            staleAfterS={settings.stale_after_s}
            selected={selection}
            showClosed={false}
            draft={null}
            flyTo={flyTo}
            follow={follow}
            onUserPan={() => setKeepCentred(false)}
            routes={routes}
            onSelect={() => {}}
            onContextMenu={() => {}}
          />
          <div className="field-map-controls">
            <button type="button" id="field-centre" disabled={!myAt} onClick={() => myAt && setFlyTo({ at: myAt, seq: Date.now(), minZoom: 15 })}>
              ◎ {t(lang, "field.centre")}
            </button>
            <label className="toggle">
              <input id="field-follow" type="checkbox" checked={keepCentred} onChange={(e) => setKeepCentred(e.target.checked)} />
              {t(lang, "field.follow")}
            </label>
          </div>
        </div>
      </div>
    </div>
  );
}

/** The receiver's status line: source, connected, counts, the newest fix and its age, the last error. */
export function GpsLine({ lang, now, gps, staleAfterS, myFix }: { lang: Lang; now: number; gps: GpsStatus | null; staleAfterS: number; myFix: FieldView["unit"]["fix"] }) {
  if (!gps) {
    return (
      <div className="gps-line" id="gps-status" data-gps="none">
        <strong>{t(lang, "field.gps")}</strong> <span className="muted">{t(lang, "field.gpsNone")}</span>
        {myFix && (
          <span>
            {" "}
            · {t(lang, "field.myPosition")} <span className="num">{formatLatLon(myFix.position.lat, myFix.position.lon)}</span>{" "}
            <FixAge lang={lang} now={now} fix={myFix} staleAfterS={staleAfterS} />
          </span>
        )}
      </div>
    );
  }
  const age = fixAge(gps.last_fix, now);
  return (
    <div className={`gps-line${gps.connected ? "" : " gps-down"}`} id="gps-status" data-gps={gps.connected ? "connected" : "disconnected"}>
      <span className={`gps-dot${gps.connected ? " on" : ""}`} aria-hidden="true" />
      <strong>{t(lang, "field.gps")}</strong> <span className="num">{gps.source}</span> ·{" "}
      <span data-gps-state>{t(lang, gps.connected ? "field.gpsConnected" : "field.gpsDisconnected")}</span> ·{" "}
      <span className="num" data-gps-counts>
        {t(lang, "field.gpsCounts", { fixes: gps.fixes, sentences: gps.sentences, skipped: gps.skipped })}
      </span>{" "}
      ·{" "}
      {gps.last_fix ? (
        <span data-gps-fix>
          <span className="num">{formatLatLon(gps.last_fix.position.lat, gps.last_fix.position.lon)}</span>{" "}
          <FixAge lang={lang} now={now} fix={gps.last_fix} staleAfterS={staleAfterS} />
          <span className="sr-only">{age !== null ? t(lang, "field.gpsLastFix", { age: formatAge(age, lang) }) : ""}</span>
        </span>
      ) : (
        <span className="muted">{t(lang, "field.gpsNoFix")}</span>
      )}
      {gps.error && (
        <span className="sync-error" data-gps-error>
          {" "}
          · {gps.error}
        </span>
      )}
    </div>
  );
}
