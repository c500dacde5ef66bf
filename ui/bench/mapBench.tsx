// The map benchmark page (bench/map.sh; built by vite.bench.config.ts, never shipped): the
// console's real MapView, style and unit layer, fed N synthetic units that report once a
// second, and a frame-time recorder.
//
// URL parameters: n (units, default 1000), mode ("ours": the console's diff updates; "naive":
// the whole source replaced with setData on every state change), warm (s, default 5), secs (s
// measured, default 20), tick (ms between state updates, default 100), report (a URL the
// result is POSTed to, for browsers driven without a DevTools protocol), zoom (the view's zoom,
// default 14, a district view; the units' box scales with it so it always fills the view: at
// an overview zoom such as 11 the console clusters them), details ("all": callsign labels and
// heading arrows at every zoom whatever the fleet's size, as the console drew them before issue 7;
// with mode=naive that is the old console; default: the console's large-fleet declutter).
//
// Reports: unit i reports at i/n of every second (reports spread evenly over the second, as
// AVL arrives); every `tick` ms the reports due since the last tick become one new console state
// (a new units array, new objects for the units that reported), like the store's coalesced
// refreshes. Each report moves the unit about 10 m along its course (heading set), and one in
// 50 changes its status. Frame time = the interval between consecutive requestAnimationFrame
// callbacks, recorded for `secs` seconds after `warm` seconds.

import * as maplibregl from "maplibre-gl";
import workerUrl from "maplibre-gl/dist/maplibre-gl-worker.mjs?url";
import { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import type { ConsoleInit, ConsoleState, UnitStatus, UnitView } from "../src/bindings";
import { MapView } from "../src/map/MapView";
import { LAYERS, SOURCES } from "../src/map/style";
import { LARGE_FLEET_DETAIL_LAYERS, UnitLayer } from "../src/map/units";

maplibregl.setWorkerUrl(workerUrl);

const params = new URLSearchParams(window.location.search);
const num = (k: string, d: number) => {
  const v = Number(params.get(k));
  return Number.isFinite(v) && v > 0 ? v : d;
};
const N = Math.floor(num("n", 1000));
const MODE = params.get("mode") === "naive" ? "naive" : "ours";
const WARM_S = num("warm", 5);
const SECS = num("secs", 20);
const TICK_MS = num("tick", 100);
const REPORT = params.get("report");
/** `write=MS`: the unit layer's least interval between source writes (default: the console's). */
const WRITE_MS = params.has("write") ? Number(params.get("write")) : undefined;
/** `static=1`: no reports, the map repainted every frame (what drawing alone costs). */
const STATIC = params.get("static") === "1";
/** `details=all`: labels and heading arrows at every zoom (no large-fleet declutter). */
const DETAILS_ALL = params.get("details") === "all";
/** The view's zoom (`zoom=`, default 14). */
const ZOOM = Math.min(18, num("zoom", 14));

/** The mock pack's centre (Andorra la Vella); at zoom 14 the box below is in view at 1600×1000. */
const CENTRE = { lat: 42.5068, lon: 1.5226 };
/** Half the units' box (degrees), scaled with the zoom so it fills the same part of the view. */
const HALF_LON = 0.032 * 2 ** (14 - ZOOM);
const HALF_LAT = 0.0145 * 2 ** (14 - ZOOM);
const STATUSES: UnitStatus[] = ["available", "dispatched", "en_route", "on_scene", "busy", "out_of_service"];

/** The result the page publishes (window.__mapBench) and POSTs to `report`. */
export interface BenchResult {
  n: number;
  mode: string;
  /** The view's zoom. */
  zoom: number;
  frames: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  over50: number;
  measuredS: number;
  /** Frames per second while measured. */
  fps: number;
  stateUpdates: number;
  reports: number;
  /** Frames in which the map drew (its `render` events). */
  renders: number;
  /** Writes of the unit source the worker applied (its `content` data events). */
  writes: number;
  /** Calls of the unit source's setData / updateData by the console while measured. */
  srcCalls: number;
  /**
   * Main-thread ms in the unit layer's writes while measured (`UnitLayer.flush`: building the
   * features or the diff and handing them to the source; not the worker's rebuild).
   */
  srcCallMs: number;
  /** Units drawn at the end: distinct unit features plus the counts of drawn clusters. */
  drawn: number;
  errors: string[];
  /** The map's size and the window's, CSS pixels. */
  viewport: string;
  userAgent: string;
}

declare global {
  interface Window {
    __mapBench?: { done: boolean; result?: BenchResult };
  }
}

// Count the unit source's setData / updateData calls, and time the unit layer's writes
// (UnitLayer.flush, main thread: building the features or the diff and the call).
const srcWrites = { calls: 0, ms: 0 };
for (const name of ["setData", "updateData"] as const) {
  const proto = maplibregl.GeoJSONSource.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const orig = proto[name] as (...a: unknown[]) => unknown;
  proto[name] = function (this: maplibregl.GeoJSONSource, ...a: unknown[]) {
    if (this.id === SOURCES.units) srcWrites.calls++;
    return orig.apply(this, a);
  };
}
{
  const orig = UnitLayer.prototype.flush;
  UnitLayer.prototype.flush = function (this: UnitLayer) {
    const t0 = performance.now();
    try {
      orig.call(this);
    } finally {
      srcWrites.ms += performance.now() - t0;
    }
  };
}

const errors: string[] = [];
window.addEventListener("error", (e) => errors.push(`error: ${e.message}`));
window.addEventListener("unhandledrejection", (e) => errors.push(`unhandledrejection: ${String(e.reason)}`));
// MapView reports map errors (other than the pack's missing tiles) on the console.
const consoleError = console.error.bind(console);
console.error = (...args: unknown[]) => {
  errors.push(args.map(String).join(" "));
  consoleError(...args);
};
window.__mapBench = { done: false };

// A small deterministic PRNG: the same units on every run.
let seed = 7;
const rnd = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};

interface Mover {
  lat: number;
  lon: number;
  /** Degrees clockwise from north. */
  course: number;
}
const movers: Mover[] = [];
let units: UnitView[] = [];
for (let i = 0; i < N; i++) {
  const m = { lat: CENTRE.lat + (rnd() * 2 - 1) * HALF_LAT, lon: CENTRE.lon + (rnd() * 2 - 1) * HALF_LON, course: rnd() * 360 };
  movers.push(m);
  units.push({
    id: `b-${i}`,
    callsign: `U${i}`,
    kind: "patrol_car",
    home_station: null,
    status: STATUSES[i % STATUSES.length] as UnitStatus,
    status_since: new Date().toISOString(),
    incident_id: null,
    incident_number: null,
    fix: { position: { lat: m.lat, lon: m.lon }, fix_time: new Date().toISOString(), heading_deg: m.course, speed_mps: 10, accuracy_m: 5 },
  });
}

/** One AVL report of unit i at `t` (ms): about 10 m along its course, turning at the box's edge. */
function report(i: number, t: number): UnitView {
  const m = movers[i] as Mover;
  const rad = (m.course * Math.PI) / 180;
  m.lat += (10 / 111_320) * Math.cos(rad);
  m.lon += (10 / (111_320 * Math.cos((m.lat * Math.PI) / 180))) * Math.sin(rad);
  if (Math.abs(m.lat - CENTRE.lat) > HALF_LAT || Math.abs(m.lon - CENTRE.lon) > HALF_LON) m.course = (m.course + 180) % 360;
  const u = units[i] as UnitView;
  const status = rnd() < 0.02 ? (STATUSES[Math.floor(rnd() * STATUSES.length)] as UnitStatus) : u.status;
  return {
    ...u,
    status,
    status_since: status === u.status ? u.status_since : new Date(t).toISOString(),
    fix: { position: { lat: m.lat, lon: m.lon }, fix_time: new Date(t).toISOString(), heading_deg: m.course, speed_mps: 10, accuracy_m: 5 },
  };
}

const init: ConsoleInit = {
  pack: {
    path: "bench.outpost",
    name: "map benchmark",
    bounds: [CENTRE.lon - 2 * HALF_LON, CENTRE.lat - 2 * HALF_LAT, CENTRE.lon + 2 * HALF_LON, CENTRE.lat + 2 * HALF_LAT],
    center: CENTRE,
    zoom: ZOOM,
    min_zoom: 0,
    max_zoom: 14,
    attribution: "© OpenStreetMap contributors",
    built_at: "2026-11-30T00:00:00Z",
  },
  // The bench server answers these tiles with 204 (empty): no basemap, only the overlay.
  map_base_url: `${window.location.origin}/no-pack`,
  demo: false,
  user: "bench",
  settings: { language: "en", theme: "day", stale_after_s: 120, server_url: null },
  field_unit: null,
} as ConsoleInit;

let revision = 1;
let stateUpdates = 0;
let reports = 0;
let setState: ((s: ConsoleState) => void) | null = null;

function Bench() {
  const [state, set] = useState<ConsoleState>({ revision, units, incidents: [], facilities: [] });
  useEffect(() => {
    setState = set;
  }, []);
  return (
    <MapView
      init={init}
      theme="day"
      lang="en"
      state={state}
      staleAfterS={120}
      selected={null}
      showClosed={false}
      draft={null}
      flyTo={null}
      onSelect={() => undefined}
      onContextMenu={() => undefined}
      unitUpdateMode={MODE === "naive" ? "naive" : "diff"}
      unitWriteIntervalMs={WRITE_MS}
    />
  );
}

/** Starts the 1 Hz reports: every TICK_MS, the reports due since the last tick as one new state. */
function startReports() {
  let last = performance.now();
  const epoch = last;
  setInterval(() => {
    const now = performance.now();
    const wall = Date.now();
    // Unit i reports at epoch + i/N s + k s; collect those in (last, now].
    const from = ((last - epoch) / 1000) * N;
    const to = ((now - epoch) / 1000) * N;
    if (Math.floor(to) === Math.floor(from)) return;
    const next = units.slice();
    for (let k = Math.floor(from) + 1; k <= Math.floor(to); k++) {
      const i = ((k % N) + N) % N;
      next[i] = report(i, wall);
      reports++;
    }
    last = now;
    units = next;
    revision++;
    stateUpdates++;
    setState?.({ revision, units, incidents: [], facilities: [] });
  }, TICK_MS);
}

const viewport = () => {
  const c = window.__outpost?.map.getContainer();
  return `map ${c?.clientWidth ?? 0}x${c?.clientHeight ?? 0}, window ${window.innerWidth}x${window.innerHeight}`;
};
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
const round = (x: number) => Math.round(x * 10) / 10;

function drawnUnits(): number {
  const map = window.__outpost?.map;
  if (!map) return 0;
  let n = new Set(map.queryRenderedFeatures({ layers: [LAYERS.units] }).map((f) => f.properties.id)).size;
  if (map.getLayer(LAYERS.unitsClusters)) {
    const seen = new Set<number>();
    for (const c of map.queryRenderedFeatures({ layers: [LAYERS.unitsClusters] })) {
      const p = c.properties as { cluster_id?: number; point_count?: number };
      if (p.cluster_id === undefined || seen.has(p.cluster_id)) continue;
      seen.add(p.cluster_id);
      n += p.point_count ?? 0;
    }
  }
  return n;
}

/** Records rAF intervals for SECS after WARM_S, then publishes the result. */
function measure() {
  const intervals: number[] = [];
  let prev = 0;
  let start = 0;
  const begin = performance.now() + WARM_S * 1000;
  const updatesAtStart = { state: 0, reports: 0, renders: 0, writes: 0, srcCalls: 0, srcCallMs: 0 };
  let renders = 0;
  let writes = 0;
  window.__outpost?.map.on("render", () => renders++);
  window.__outpost?.map.on("sourcedata", (e: maplibregl.MapSourceDataEvent) => {
    if (e.sourceId === SOURCES.units && e.sourceDataType === "content") writes++;
  });
  const frame = (t: number) => {
    if (t >= begin) {
      if (start === 0) {
        start = t;
        updatesAtStart.state = stateUpdates;
        updatesAtStart.reports = reports;
        updatesAtStart.renders = renders;
        updatesAtStart.writes = writes;
        updatesAtStart.srcCalls = srcWrites.calls;
        updatesAtStart.srcCallMs = srcWrites.ms;
      } else intervals.push(t - prev);
    }
    prev = t;
    if (start === 0 || t - start < SECS * 1000) {
      requestAnimationFrame(frame);
      return;
    }
    const sorted = intervals.slice().sort((a, b) => a - b);
    const result: BenchResult = {
      n: N,
      mode: MODE,
      zoom: ZOOM,
      frames: intervals.length,
      p50: round(quantile(sorted, 0.5)),
      p95: round(quantile(sorted, 0.95)),
      p99: round(quantile(sorted, 0.99)),
      max: round(sorted[sorted.length - 1] ?? 0),
      over50: intervals.filter((x) => x > 50).length,
      measuredS: round((t - start) / 1000),
      fps: round(intervals.length / ((t - start) / 1000)),
      stateUpdates: stateUpdates - updatesAtStart.state,
      reports: reports - updatesAtStart.reports,
      renders: renders - updatesAtStart.renders,
      writes: writes - updatesAtStart.writes,
      srcCalls: srcWrites.calls - updatesAtStart.srcCalls,
      srcCallMs: round(srcWrites.ms - updatesAtStart.srcCallMs),
      drawn: drawnUnits(),
      errors: errors.slice(0, 20),
      viewport: viewport(),
      userAgent: navigator.userAgent,
    };
    window.__mapBench = { done: true, result };
    if (REPORT) void fetch(REPORT, { method: "POST", body: JSON.stringify(result) }).catch(() => undefined);
  };
  requestAnimationFrame(frame);
}

createRoot(document.getElementById("root") as HTMLElement).render(<Bench />);
// Start once the style is in and the first units are drawn (MapView's ready flag).
const loadedBy = performance.now() + 90_000;
const waitReady = setInterval(() => {
  if (!window.__outpost?.ready) {
    if (performance.now() < loadedBy) return;
    // Never drawn: publish an invalid run rather than hang.
    clearInterval(waitReady);
    const result = { n: N, mode: MODE, zoom: ZOOM, frames: 0, p50: 0, p95: 0, p99: 0, max: 0, over50: 0, measuredS: 0, fps: 0, stateUpdates: 0, reports: 0, renders: 0, writes: 0, srcCalls: 0, srcCallMs: 0, drawn: 0, errors: [...errors, "the map was not ready within 90 s"], viewport: viewport(), userAgent: navigator.userAgent };
    window.__mapBench = { done: true, result };
    if (REPORT) void fetch(REPORT, { method: "POST", body: JSON.stringify(result) }).catch(() => undefined);
    return;
  }
  clearInterval(waitReady);
  // `hide=layer,layer`: those layers hidden (diagnostics: what each layer costs).
  for (const id of (params.get("hide") ?? "").split(",").filter(Boolean)) window.__outpost?.map.setLayoutProperty(id, "visibility", "none");
  // The unit layer switched the detail layers on its first write (a large fleet); undo that.
  if (DETAILS_ALL) for (const id of LARGE_FLEET_DETAIL_LAYERS) window.__outpost?.map.setLayerZoomRange(id, 0, 24);
  if (STATIC) {
    const repaint = () => {
      window.__outpost?.map.triggerRepaint();
      requestAnimationFrame(repaint);
    };
    requestAnimationFrame(repaint);
  } else startReports();
  measure();
}, 50);
