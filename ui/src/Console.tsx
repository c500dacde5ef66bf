import { type ReactNode, useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import {
  acknowledgeIncident,
  addNote,
  assignUnit,
  bindDevice,
  closeIncident,
  type ConsoleInit,
  createIncident,
  describeLocation,
  exportTrack,
  type IncidentDetail,
  incidentDetail,
  type LatLon,
  type NewIncident,
  releaseUnit,
  saveSettings,
  type Settings,
  setUnitStatus,
  type UnitStatus,
  updateIncident,
} from "./bindings";
import { usePermissions } from "./auth";
import { unboundCount, useDevices } from "./devices";
import { errorText } from "./errors";
import { isNightHour, useNow } from "./hooks";
import { type Lang, resolveLang, t } from "./i18n";
import type { TrackOverlay } from "./map/features";
import { type FlyTarget, type MapSelection, MapView } from "./map/MapView";
import type { MapTheme } from "./map/style";
import { DevicesPanel } from "./panels/DevicesPanel";
import { IncidentDetailPanel } from "./panels/IncidentDetailPanel";
import { IncidentQueue } from "./panels/IncidentQueue";
import { type Draft, NewIncidentForm } from "./panels/NewIncidentForm";
import { PlaceSearch } from "./panels/PlaceSearch";
import { PlaybackPanel } from "./panels/PlaybackPanel";
import { SettingsPanel } from "./panels/SettingsPanel";
import { SyncIndicator } from "./panels/SyncIndicator";
import { SyncPanel } from "./panels/SyncPanel";
import { UnitBoard } from "./panels/UnitBoard";
import { FacilityCard, UnitCard } from "./panels/UnitCard";
import { useLiveConsole } from "./live";
import { ConsoleStore } from "./store";
import { conflictedIds, SyncStore } from "./sync";
// Road closures, facility import and the map search (issue 5, helper F).
import { addPoint, type Drawing, useRoadClosures } from "./closures";
import { activeClosureCount, ClosuresPanel } from "./panels/ClosuresPanel";
import { ImportPanel } from "./panels/ImportPanel";
import { MapSearch } from "./panels/MapSearch";
// Dispatch intelligence (issue 5): closest units, their routes, 1-3-5 coverage.
import { closestUnits, coverage as readCoverage } from "./bindings";
import { CLOSEST_MIN_GAP_MS, COVERAGE_MIN_GAP_MS, useExpiryTick, useThrottledQuery } from "./dispatch";
import { closestRouteLines } from "./map/routes";
import { CoverageControl } from "./panels/CoverageControl";

type Panel =
  | { kind: "none" }
  | { kind: "incident"; id: string }
  | { kind: "unit"; id: string }
  | { kind: "facility"; id: string }
  | { kind: "new" }
  | { kind: "settings" }
  | { kind: "sync" }
  | { kind: "devices" }
  | { kind: "track"; unitId: string | null }
  | { kind: "closures" }
  | { kind: "import" };

const EMPTY_DRAFT: Draft = { location: null, address: "" };

/** The theme to draw now: `auto` is night between 19:00 and 07:00 local time. */
export function resolveTheme(setting: Settings["theme"], now: Date): MapTheme {
  if (setting === "day" || setting === "night") return setting;
  return isNightHour(now) ? "night" : "day";
}

function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}

/**
 * The console: top bar, queue and board, map, and one side panel at a time. `authBar` (the
 * signed-in person, lock and sign-out) goes into the top bar; write actions the person's role
 * may not do are hidden ([`usePermissions`]).
 */
export function Console({
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
  // A failed refresh must be seen: a frozen board that looks live is worse than an error.
  const refreshError = useSyncExternalStore(store.subscribe, store.lastError);
  const syncStore = useMemo(() => new SyncStore(), []);
  const sync = useSyncExternalStore(syncStore.subscribe, syncStore.get);
  const conflicted = useMemo(() => conflictedIds(sync.conflicts), [sync.conflicts]);
  const [settings, setSettings] = useState<Settings>(init.settings);
  const now = useNow(1000);
  const lang: Lang = resolveLang(settings.language, navigator.language);
  // The theme follows the clock only at minute resolution, so the map isn't rebuilt each tick.
  const minute = Math.floor(now / 60000);
  const theme = useMemo(() => resolveTheme(settings.theme, new Date(minute * 60000)), [settings.theme, minute]);
  const [panel, setPanel] = useState<Panel>({ kind: "none" });
  const [detail, setDetail] = useState<IncidentDetail | null>(null);
  const [draft, setDraft] = useState<Draft>(EMPTY_DRAFT);
  const [centre, setCentre] = useState<LatLon>(init.pack.center);
  const [flyTo, setFlyTo] = useState<FlyTarget | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [showClosed, setShowClosed] = useState(false);
  const [search, setSearch] = useState("");
  const { devices, error: devicesError, reload: reloadDevices } = useDevices(state?.revision);
  const [trackOverlay, setTrackOverlay] = useState<TrackOverlay | null>(null);
  const [follow, setFollow] = useState<LatLon | null>(null);
  const [pin, setPin] = useState<LatLon | null>(null);
  const searchRef = useRef<HTMLInputElement>(null);
  const sideRef = useRef<HTMLElement>(null);
  const panelRef = useRef(panel);
  panelRef.current = panel;

  useLiveConsole(store, syncStore, lang, theme, setError);

  // Road closures (read again at every revision), the one being drawn while the closures
  // panel is open, and the map search's marker.
  const roadClosureList = useRoadClosures(state?.revision);
  const [drawing, setDrawing] = useState<Drawing | null>(null);
  const [searchMark, setSearchMark] = useState<LatLon | null>(null);
  const closuresOpen = panel.kind === "closures";
  useEffect(() => {
    if (!closuresOpen) setDrawing(null);
  }, [closuresOpen]);
  const closureLayer = useMemo(
    () => ({ list: roadClosureList.list, drawing: closuresOpen ? drawing : null, onDrawClick: (at: LatLon) => setDrawing((d) => (d ? addPoint(d, at) : d)) }),
    [roadClosureList.list, drawing, closuresOpen],
  );
  const activeClosures = activeClosureCount(roadClosureList.list, now);

  // A newly opened card takes the keyboard focus, so its buttons are a few Tabs away
  // (the new-incident form focuses its address field itself).
  const panelKey =
    panel.kind === "none" || panel.kind === "new" ? panel.kind : `${panel.kind}:${"id" in panel ? panel.id : "unitId" in panel ? panel.unitId : ""}`;
  // The device pin belongs to the devices panel.
  useEffect(() => {
    if (panel.kind !== "devices") setPin(null);
  }, [panel.kind]);
  useEffect(() => {
    if (panelKey === "none" || panelKey === "new") return;
    const el = sideRef.current;
    if (el && !el.contains(document.activeElement)) el.focus({ preventScroll: true });
  }, [panelKey, detail?.summary.id]);

  // The open incident's detail follows every revision.
  const openIncidentId = panel.kind === "incident" ? panel.id : null;
  useEffect(() => {
    if (!openIncidentId) {
      setDetail(null);
      return;
    }
    let stale = false;
    incidentDetail({ incident_id: openIncidentId })
      .then((d) => !stale && setDetail(d))
      .catch((e) => !stale && setError(errorText(e)));
    return () => {
      stale = true;
    };
  }, [openIncidentId, state?.revision]);

  // Dispatch intelligence: the open incident's closest units (at most 2 rankings a second, on
  // every revision) and, while the layer is on, 1-3-5 coverage (at most every 3 s).
  // Not for a closed incident (nothing to dispatch to). Both are read again every 30 s and
  // when the earliest active closure's expected end passes (no revision marks that).
  const openClosed = detail?.summary.id === openIncidentId && detail?.summary.status === "closed";
  const expiryTick = useExpiryTick(roadClosureList.list);
  const dispatchRevision = state === null || state === undefined ? undefined : `${state.revision}.${expiryTick}`;
  const closest = useThrottledQuery(openClosed ? null : openIncidentId, dispatchRevision, (id) => closestUnits({ incident_id: id }), CLOSEST_MIN_GAP_MS, (e) =>
    setError(errorText(e)),
  );
  const routes = useMemo(() => closestRouteLines(closest), [closest]);
  const [coverageOn, setCoverageOn] = useState(false);
  const coverageView = useThrottledQuery(coverageOn ? "on" : null, dispatchRevision, () => readCoverage(), COVERAGE_MIN_GAP_MS, (e) => setError(errorText(e)));

  /** Runs one backend action: errors are shown, never swallowed; state refreshes after. */
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
      }
    },
    [store],
  );

  const stateRef = useRef(state);
  stateRef.current = state;
  /** Opens an incident's card and brings it into view. */
  const openIncident = useCallback((id: string) => {
    setPanel({ kind: "incident", id });
    const i = stateRef.current?.incidents.find((x) => x.id === id);
    if (i) setFlyTo({ at: i.location, seq: Date.now(), minZoom: 13 });
  }, []);
  /** Opens a unit's card and brings its last fix into view. */
  const openUnit = useCallback((id: string) => {
    setPanel({ kind: "unit", id });
    const u = stateRef.current?.units.find((x) => x.id === id);
    if (u?.fix) setFlyTo({ at: u.fix.position, seq: Date.now(), minZoom: 13 });
  }, []);
  const mayCreate = can.incidents;
  const openNew = useCallback(
    (d: Draft = EMPTY_DRAFT) => {
      if (!mayCreate) return;
      setDraft(d);
      setPanel({ kind: "new" });
    },
    [mayCreate],
  );

  const onContextMenu = useCallback((at: LatLon) => {
    if (!mayCreate) return;
    setDraft({ location: at, address: "", describing: true });
    setPanel({ kind: "new" });
    describeLocation(at)
      .then((d) =>
        setDraft((cur) =>
          cur.location === at ? { ...cur, describing: false, address: cur.address.trim() ? cur.address : d.address } : cur,
        ),
      )
      .catch((e) => {
        setDraft((cur) => (cur.location === at ? { ...cur, describing: false } : cur));
        setError(errorText(e));
      });
  }, [mayCreate]);

  const onSelect = useCallback((s: MapSelection) => setPanel({ kind: s.kind, id: s.id }), []);

  const acknowledge = useCallback(
    (id: string) => (mayCreate ? act(() => acknowledgeIncident({ incident_id: id })).then((d) => d && setDetail(d)) : Promise.resolve()),
    [act, mayCreate],
  );

  // Keyboard: N new incident, / search, A acknowledge, Esc close.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        if (panelRef.current.kind !== "none") {
          setPanel({ kind: "none" });
          setDraft(EMPTY_DRAFT);
        } else setError(null);
        return;
      }
      if (isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === "n" || e.key === "N") {
        e.preventDefault();
        openNew();
      } else if (e.key === "/") {
        e.preventDefault();
        searchRef.current?.focus();
      } else if ((e.key === "a" || e.key === "A") && panelRef.current.kind === "incident") {
        e.preventDefault();
        void acknowledge(panelRef.current.id);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [openNew, acknowledge]);

  const submitNew = async (n: NewIncident) => {
    const d = await act(() => createIncident(n));
    if (d) {
      setDetail(d);
      setDraft(EMPTY_DRAFT);
      setPanel({ kind: "incident", id: d.summary.id });
    }
  };

  const setStatus = (unitId: string, to: UnitStatus) => act(() => setUnitStatus({ unit_id: unitId, to }));

  // Memoised: a new object each render would make the map push all its sources every tick.
  const selection: MapSelection | null = useMemo(
    () => (panel.kind === "incident" || panel.kind === "unit" || panel.kind === "facility" ? { kind: panel.kind, id: panel.id } : null),
    [panel],
  );
  const units = state?.units ?? [];
  const facilities = state?.facilities ?? [];
  const selectedUnit = panel.kind === "unit" ? units.find((u) => u.id === panel.id) : undefined;
  const selectedFacility = panel.kind === "facility" ? facilities.find((f) => f.id === panel.id) : undefined;

  let side: React.ReactNode = null;
  if (panel.kind === "new") {
    side = (
      <NewIncidentForm
        lang={lang}
        draft={draft}
        centre={centre}
        busy={busy}
        onDraft={(d) => {
          setDraft(d);
          if (d.location && d.location !== draft.location) setFlyTo({ at: d.location, seq: Date.now() });
        }}
        onSubmit={(n) => void submitNew(n)}
        onCancel={() => {
          setPanel({ kind: "none" });
          setDraft(EMPTY_DRAFT);
        }}
      />
    );
  } else if (panel.kind === "incident" && detail && detail.summary.id === panel.id) {
    const id = panel.id;
    side = (
      <IncidentDetailPanel
        key={id}
        lang={lang}
        now={now}
        staleAfterS={settings.stale_after_s}
        detail={detail}
        units={units}
        busy={busy}
        conflicts={sync.conflicts.filter((c) => c.incident_id === id).length}
        onReviewConflicts={() => setPanel({ kind: "sync" })}
        closest={{
          data: closest,
          dispatch: (unitId) =>
            act(() => assignUnit({ incident_id: id, unit_id: unitId })).then((d) => {
              if (d) setDetail(d);
              return d !== undefined;
            }),
        }}
        actions={{
          acknowledge: () => void acknowledge(id),
          setType: (it) =>
            void act(() =>
              updateIncident({ incident_id: id, fields: { incident_type: it, priority: null, location: null, address: null, description: null } }),
            ).then((d) => d && setDetail(d)),
          setPriority: (p) =>
            void act(() =>
              updateIncident({ incident_id: id, fields: { incident_type: null, priority: p, location: null, address: null, description: null } }),
            ).then((d) => d && setDetail(d)),
          assign: (unitId) => void act(() => assignUnit({ incident_id: id, unit_id: unitId })).then((d) => d && setDetail(d)),
          release: (unitId) => void act(() => releaseUnit({ incident_id: id, unit_id: unitId })).then((d) => d && setDetail(d)),
          setUnitStatus: (unitId, to) => void setStatus(unitId, to),
          addNote: async (text) => {
            const d = await act(() => addNote({ incident_id: id, text }));
            if (d) setDetail(d);
            return d !== undefined;
          },
          close: (disposition, summary) =>
            void act(() => closeIncident({ incident_id: id, disposition, summary })).then((d) => d && setDetail(d)),
          dismiss: () => setPanel({ kind: "none" }),
        }}
      />
    );
  } else if (selectedUnit) {
    side = (
      <UnitCard
        lang={lang}
        now={now}
        unit={selectedUnit}
        facilities={facilities}
        staleAfterS={settings.stale_after_s}
        busy={busy}
        onSetStatus={(to) => void setStatus(selectedUnit.id, to)}
        onOpenIncident={openIncident}
        onTrack={() => setPanel({ kind: "track", unitId: selectedUnit.id })}
        onDismiss={() => setPanel({ kind: "none" })}
      />
    );
  } else if (selectedFacility) {
    side = (
      <FacilityCard
        lang={lang}
        facility={selectedFacility}
        units={units}
        onOpenUnit={(id) => setPanel({ kind: "unit", id })}
        onDismiss={() => setPanel({ kind: "none" })}
      />
    );
  } else if (panel.kind === "sync") {
    side = (
      <SyncPanel
        lang={lang}
        now={now}
        status={sync.status}
        conflicts={sync.conflicts}
        parked={sync.parked}
        incidents={state?.incidents ?? []}
        units={units}
        busy={busy || !can.conflicts}
        onKeep={(conflictId, keepOpId, note) => void act(() => syncStore.resolve(conflictId, keepOpId, note))}
        onOpenIncident={openIncident}
        onOpenUnit={openUnit}
        onDismiss={() => setPanel({ kind: "none" })}
      />
    );
  } else if (panel.kind === "devices") {
    side = (
      <DevicesPanel
        lang={lang}
        now={now}
        devices={devices}
        error={devicesError}
        units={units}
        staleAfterS={settings.stale_after_s}
        busy={busy || !can.devices}
        onBind={(deviceId, unitId) => void act(() => bindDevice({ device_id: deviceId, unit_id: unitId })).then(() => reloadDevices())}
        onShow={(at) => {
          setPin(at);
          setFlyTo({ at, seq: Date.now(), minZoom: 15 });
        }}
        onOpenUnit={openUnit}
        onDismiss={() => setPanel({ kind: "none" })}
      />
    );
  } else if (panel.kind === "track") {
    side = (
      <PlaybackPanel
        key={panel.unitId ?? ""}
        lang={lang}
        now={now}
        units={units}
        initialUnitId={panel.unitId}
        staleAfterS={settings.stale_after_s}
        busy={busy}
        onExport={(q, format) => act(() => exportTrack({ track: q, format }))}
        onOverlay={setTrackOverlay}
        onFollow={setFollow}
        onDismiss={() => setPanel({ kind: "none" })}
      />
    );
  } else if (panel.kind === "closures") {
    side = (
      <ClosuresPanel
        lang={lang}
        now={now}
        closures={roadClosureList.list}
        loadError={roadClosureList.error}
        drawing={drawing}
        onDrawing={setDrawing}
        onChanged={() => {
          roadClosureList.reload();
          void store.refresh();
        }}
        onDismiss={() => setPanel({ kind: "none" })}
      />
    );
  } else if (panel.kind === "import") {
    side = <ImportPanel lang={lang} onImported={() => void store.refresh()} onDismiss={() => setPanel({ kind: "none" })} />;
  } else if (panel.kind === "settings") {
    side = (
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
              setPanel({ kind: "none" });
            }
          })
        }
        onDismiss={() => setPanel({ kind: "none" })}
      />
    );
  }
  // Facility import opens from the settings panel (the top bar has no room left at 1280 px).
  if (panel.kind === "settings") {
    side = (
      <>
        {side}
        <section className="card settings-data" aria-labelledby="settings-data-title">
          <h3 id="settings-data-title">{t(lang, "settings.data")}</h3>
          <button type="button" id="open-import" disabled={!can.facilities} onClick={() => setPanel({ kind: "import" })}>
            {t(lang, "top.import")}
          </button>
          <p className="small muted">{t(lang, "settings.importHint")}</p>
        </section>
      </>
    );
  }

  return (
    <div className={`console theme-${theme}`} data-theme={theme}>
      <header className="topbar">
        <h1 className="brand">{t(lang, "app.name")}</h1>
        <span className="pack-name" title={init.pack.path}>
          {init.pack.name}
        </span>
        {init.demo && (
          <span className="demo-banner" id="demo-banner" role="status" title={t(lang, "app.demo")}>
            {t(lang, "app.demo")}
          </span>
        )}
        <div className="top-search">
          <PlaceSearch
            lang={lang}
            id="place-search"
            inputRef={searchRef}
            value={search}
            near={centre}
            placeholder={`${t(lang, "top.search")} (/)`}
            onChange={setSearch}
            onPick={(h) => {
              setSearch("");
              setFlyTo({ at: h.position, seq: Date.now() });
              openNew({ location: h.position, address: h.address });
            }}
          />
        </div>
        {can.incidents && (
          <button type="button" id="new-incident" className="primary" onClick={() => openNew()} aria-keyshortcuts="N">
            {t(lang, "top.newIncident")} <kbd>N</kbd>
          </button>
        )}
        <button
          type="button"
          id="open-devices"
          aria-expanded={panel.kind === "devices"}
          onClick={() => setPanel(panel.kind === "devices" ? { kind: "none" } : { kind: "devices" })}
        >
          {t(lang, "top.devices")}
          {unboundCount(devices) > 0 && (
            <span
              id="unbound-badge"
              className="sync-badge badge-parked num"
              title={`${t(lang, "top.devicesUnbound", { n: unboundCount(devices) })}: ${t(lang, "dev.unboundHint")}`}
              aria-label={t(lang, "top.devicesUnbound", { n: unboundCount(devices) })}
            >
              {unboundCount(devices)}
            </span>
          )}
        </button>
        <button
          type="button"
          id="open-playback"
          aria-expanded={panel.kind === "track"}
          onClick={() => setPanel(panel.kind === "track" ? { kind: "none" } : { kind: "track", unitId: selectedUnit?.id ?? null })}
        >
          {t(lang, "top.playback")}
        </button>
        <button
          type="button"
          id="open-closures"
          aria-expanded={panel.kind === "closures"}
          onClick={() => setPanel(panel.kind === "closures" ? { kind: "none" } : { kind: "closures" })}
        >
          {t(lang, "top.closures")}
          {activeClosures > 0 && (
            <span id="closures-badge" className="sync-badge badge-closures num" title={t(lang, "top.closuresActive", { n: activeClosures })}>
              {activeClosures}
            </span>
          )}
        </button>
        <SyncIndicator
          lang={lang}
          now={now}
          status={sync.status}
          failed={sync.error !== null}
          open={panel.kind === "sync"}
          onClick={() => setPanel(panel.kind === "sync" ? { kind: "none" } : { kind: "sync" })}
          onSignIn={onSignIn}
        />
        <button type="button" id="open-settings" onClick={() => setPanel({ kind: "settings" })}>
          {t(lang, "top.settings")}
        </button>
        {authBar}
        <span className="clock num" title={init.user}>
          {new Date(now).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { hourCycle: "h23" })}
        </span>
      </header>
      <p className="shortcuts small muted">{t(lang, "top.shortcuts")}</p>
      {refreshError != null && (
        <div id="refresh-error" className="error-bar" role="alert">
          <strong>{t(lang, "error.refresh")}:</strong> <span>{errorText(refreshError)}</span>
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
      <div className={`workspace${side ? " with-side" : ""}`}>
        <div className="left">
          <IncidentQueue
            lang={lang}
            now={now}
            incidents={state?.incidents ?? []}
            selectedId={openIncidentId}
            showClosed={showClosed}
            onShowClosed={setShowClosed}
            onOpen={openIncident}
            conflicted={conflicted.incidents}
          />
          <UnitBoard
            lang={lang}
            now={now}
            units={units}
            facilities={facilities}
            staleAfterS={settings.stale_after_s}
            selectedId={panel.kind === "unit" ? panel.id : null}
            onOpenUnit={openUnit}
            onOpenIncident={openIncident}
            conflicted={conflicted.units}
          />
        </div>
        <MapView
          init={init}
          theme={theme}
          lang={lang}
          state={state}
          staleAfterS={settings.stale_after_s}
          selected={selection}
          showClosed={showClosed}
          draft={panel.kind === "new" ? draft.location : null}
          flyTo={flyTo}
          onSelect={onSelect}
          onContextMenu={onContextMenu}
          onCentreChange={setCentre}
          track={panel.kind === "track" ? trackOverlay : null}
          follow={panel.kind === "track" ? follow : null}
          pin={pin}
          closures={closureLayer}
          searchMark={searchMark}
          routes={routes}
          coverage={coverageOn ? coverageView : null}
        >
          <CoverageControl lang={lang} on={coverageOn} onToggle={setCoverageOn} coverage={coverageOn ? coverageView : null} />
        </MapView>
        <MapSearch
          lang={lang}
          centre={centre}
          onClear={() => setSearchMark(null)}
          onPick={(h) => {
            setSearchMark(h.position);
            setFlyTo({ at: h.position, seq: Date.now() });
          }}
        />
        {side && (
          <aside className="side" ref={sideRef} tabIndex={-1} aria-label={t(lang, "detail.title")}>
            {side}
          </aside>
        )}
      </div>
    </div>
  );
}
