// The unit layer's data path (issue 7, "the map at scale"): console state -> the `units`
// GeoJSON source, built to stay smooth with 10,000 units reporting once a second.
//
// - Diff updates: the source gets `GeoJSONSource.updateData` with only the units whose drawn
//   feature changed (position, status, heading, label, staleness), keyed by unit id
//   (`promoteId: "id"`), instead of a new FeatureCollection of every unit on each state change.
// - One update per animation frame, and with UNIT_WRITE_THROTTLE_FROM units or more at most one
//   per UNIT_WRITE_INTERVAL_MS: state changes in between collapse into one diff.
// - Selection is feature state (`selected`), so selecting a unit sends nothing to the worker.
// - Clustering from CLUSTER_FROM units with a fix (counts drawn on the clusters), only at
//   overview zooms (up to CLUSTER_MAX_ZOOM): a commander's district view (zoom 12 and closer)
//   always shows every unit. Fewer units are never clustered, so a small fleet looks as it
//   always did.
// - A large fleet (CLUSTER_FROM units with a fix or more) is decluttered: callsign labels and
//   heading arrows are drawn only from LARGE_FLEET_LABEL_MIN_ZOOM (their layers' zoom range is
//   switched when the fleet crosses the threshold, as clustering is). With thousands of units in
//   one view those symbols are most of each redraw (labels mostly collide anyway); every unit's
//   dot, status colour, staleness and selection ring stay.
// - The source's tiles stop at UNIT_SOURCE_MAX_ZOOM (style.ts) and are overzoomed above it.
//
// `mode: "naive"` is the baseline the benchmark compares with (bench/map.sh): the whole
// FeatureCollection replaced with `setData` on every state change. It draws what the console
// draws (the same layers and the same large-fleet declutter switch), so the two differ only in
// how data reaches the source; it is never clustered (clustering is only at overview zooms, up
// to CLUSTER_MAX_ZOOM, so at the benchmark's district view the console draws every unit too).

import type * as maplibregl from "maplibre-gl";
import type { UnitView } from "../bindings";
import { fixAgeS } from "../domain";
import { formatAge } from "../format";
import type { Lang } from "../i18n";
import { AGE_LABEL_AFTER_S, type PointFeature, unitFeatures } from "./features";
import { LAYERS, SOURCES, UNIT_STATUS_COLOURS } from "./style";

/** From this many units with a fix, the unit source clusters at low zoom. */
export const CLUSTER_FROM = 500;
/**
 * The highest zoom at which units are clustered (from the next zoom up every unit is drawn):
 * an overview of the whole area. A district view (about zoom 13-14) must show every unit, so
 * this stays below it; it must also stay below the source's UNIT_SOURCE_MAX_ZOOM (MapLibre
 * clusters only below the source's max zoom).
 */
export const CLUSTER_MAX_ZOOM = 11;
/** Units closer than this on screen (CSS pixels) join one cluster. */
export const CLUSTER_RADIUS_PX = 40;
/**
 * With CLUSTER_FROM units with a fix or more, callsign labels (`units-label`) and heading
 * arrows (`units-heading`) are drawn only from this zoom up (a street view); below it a large
 * fleet shows its dots only (status colour, staleness, selection ring). A smaller fleet has
 * both at every zoom. With 10,000 units in a district view (zoom 14) these symbol layers are
 * most of each redraw (bench/notes/map.md).
 */
export const LARGE_FLEET_LABEL_MIN_ZOOM = 15;
/** The layers a large fleet draws only from LARGE_FLEET_LABEL_MIN_ZOOM. */
export const LARGE_FLEET_DETAIL_LAYERS = [LAYERS.unitsLabel, LAYERS.unitsHeading] as const;
/** Their zoom range for a small fleet: the style's (every zoom). */
const DETAIL_ZOOM_RANGE_SMALL: [number, number] = [0, 24];

/**
 * The least time between two writes of the unit source (ms). Units report about once a second;
 * each write makes MapLibre rebuild the source's tiles and repaint, which with software
 * rendering (WebKitGTK without a GPU) costs far more than a frame. Reports arriving in between
 * are merged into the next write, so a position is shown at most this much later.
 */
export const UNIT_WRITE_INTERVAL_MS = 1000;
/** Fleets smaller than this (units with a fix) are written on the next frame, unthrottled. */
export const UNIT_WRITE_THROTTLE_FROM = 100;

/**
 * How the layer updates its source: diffs (the console) or full replacement of every unit on
 * each update (the benchmark's baseline; same layers and zoom ranges, never clustered).
 */
export type UnitLayerMode = "diff" | "naive";

/** What the layer draws: the state's units and how to show them. */
export interface UnitLayerInput {
  units: UnitView[];
  /** Clock for fix ages, ms since the Unix epoch (UTC). */
  nowMs: number;
  /** A fix older than this (seconds) is drawn stale. */
  staleAfterS: number;
  lang: Lang;
  /** The selected unit's id, or null. */
  selectedId: string | null;
}

/** Properties of a unit feature in the diffed source (selection is feature state). */
export interface LiveUnitProps {
  id: string;
  kind: "unit";
  callsign: string;
  status: string;
  colour: string;
  /** Degrees clockwise from true north; absent without a heading. */
  heading?: number;
  stale: boolean;
  /** Callsign, plus the fix age on a second line once it is a minute old or stale. */
  label: string;
}

/** One unit's feature, or null without a fix. */
export function liveUnitFeature(u: UnitView, nowMs: number, staleAfterS: number, lang: Lang): PointFeature<LiveUnitProps> | null {
  if (!u.fix) return null;
  const age = fixAgeS(u, nowMs) ?? 0;
  const stale = age > staleAfterS;
  const props: LiveUnitProps = {
    id: u.id,
    kind: "unit",
    callsign: u.callsign,
    status: u.status,
    colour: UNIT_STATUS_COLOURS[u.status],
    stale,
    label: stale || age >= AGE_LABEL_AFTER_S ? `${u.callsign}\n${formatAge(age, lang)}` : u.callsign,
  };
  if (u.fix.heading_deg !== null && Number.isFinite(u.fix.heading_deg)) props.heading = u.fix.heading_deg;
  return {
    type: "Feature",
    id: u.id,
    geometry: { type: "Point", coordinates: [u.fix.position.lon, u.fix.position.lat] },
    properties: props,
  };
}

/** What is drawn of a unit: equal keys mean nothing to send. */
function drawnKey(f: PointFeature<LiveUnitProps>): string {
  const p = f.properties;
  const [lon, lat] = f.geometry.coordinates;
  return `${lon},${lat}|${p.status}|${p.heading ?? ""}|${p.stale ? 1 : 0}|${p.label}|${p.callsign}`;
}

/** The changes that turn what was sent (`shown`, id -> drawn key) into `next`; updates `shown`. */
export function diffUnits(
  shown: Map<string, string>,
  next: PointFeature<LiveUnitProps>[],
): { add: PointFeature<LiveUnitProps>[]; update: PointFeature<LiveUnitProps>[]; remove: string[] } {
  const add: PointFeature<LiveUnitProps>[] = [];
  const update: PointFeature<LiveUnitProps>[] = [];
  const seen = new Set<string>();
  for (const f of next) {
    seen.add(f.id);
    const key = drawnKey(f);
    const was = shown.get(f.id);
    if (was === key) continue;
    (was === undefined ? add : update).push(f);
    shown.set(f.id, key);
  }
  const remove: string[] = [];
  if (seen.size !== shown.size) {
    for (const id of shown.keys()) if (!seen.has(id)) remove.push(id);
    for (const id of remove) shown.delete(id);
  }
  return { add, update, remove };
}

const now = () => (typeof performance === "object" ? performance.now() : Date.now());

type SourceData = Parameters<maplibregl.GeoJSONSource["setData"]>[0];
type SourceDiff = Parameters<maplibregl.GeoJSONSource["updateData"]>[0];

/** Schedules a callback for the next frame (a timer where there are no frames, e.g. jsdom). */
type Scheduler = (cb: () => void) => void;
const nextFrame: Scheduler = (cb) =>
  typeof requestAnimationFrame === "function" ? void requestAnimationFrame(() => cb()) : void setTimeout(cb, 16);

/**
 * Keeps the map's `units` source in step with the console state. `update` may be called as often
 * as state arrives; the source is written at most once per animation frame. Call `styleLoaded`
 * after each `style.load` (a new style has a new, empty source).
 */
export class UnitLayer {
  private input: UnitLayerInput | null = null;
  private scheduled = false;
  /** id -> drawn key of what the source holds; null until the source got its first data. */
  private shown: Map<string, string> | null = null;
  private clustered = false;
  /** Whether labels and heading arrows are limited to LARGE_FLEET_LABEL_MIN_ZOOM and up. */
  private decluttered = false;
  private selected: string | null = null;
  private lastWrite = -Infinity;
  /** Units with a fix at the last write. */
  private fixes = 0;
  private disposed = false;

  constructor(
    private readonly map: maplibregl.Map,
    readonly mode: UnitLayerMode = "diff",
    /** Least ms between two source writes (diff mode); 0 = once per frame. */
    private readonly writeIntervalMs: number = UNIT_WRITE_INTERVAL_MS,
    private readonly schedule: Scheduler = nextFrame,
  ) {}

  /**
   * The newest state to draw; written to the source on the next frame, or once
   * `writeIntervalMs` have passed since the last write (naive: at once, every time).
   * A change of selection only is applied at once (feature state, nothing is rebuilt).
   */
  update(input: UnitLayerInput): void {
    const selectionOnly = this.input !== null && input.units === this.input.units && input.selectedId !== this.input.selectedId;
    this.input = input;
    if (this.mode === "naive") {
      this.flush();
      return;
    }
    if (selectionOnly && this.shown !== null) this.select(input.selectedId);
    if (this.scheduled) return;
    this.scheduled = true;
    const throttled = this.fixes >= UNIT_WRITE_THROTTLE_FROM;
    const wait = throttled ? this.lastWrite + this.writeIntervalMs - now() : 0;
    const go = () =>
      this.schedule(() => {
        this.scheduled = false;
        this.flush();
      });
    if (wait > 0) setTimeout(go, wait);
    else go();
  }

  /** A new style replaced the source: the next write sends everything again. */
  styleLoaded(): void {
    this.shown = null;
    this.clustered = false;
    this.decluttered = false;
    this.selected = null;
    if (this.input) this.flush();
  }

  /** Whether the source currently clusters (CLUSTER_FROM units or more). */
  get isClustered(): boolean {
    return this.clustered;
  }

  /** Whether labels and heading arrows are limited to LARGE_FLEET_LABEL_MIN_ZOOM and up (a large fleet). */
  get isDecluttered(): boolean {
    return this.decluttered;
  }

  /** The map is going away: pending writes are dropped. */
  dispose(): void {
    this.disposed = true;
    this.input = null;
  }

  /** Writes the newest input to the source now. */
  flush(): void {
    if (this.disposed) return;
    const input = this.input;
    const src = this.map.getSource(SOURCES.units) as maplibregl.GeoJSONSource | undefined;
    if (!input || !src) return;
    this.lastWrite = now();
    if (this.mode === "naive") {
      let fixes = 0;
      for (const u of input.units) if (u.fix) fixes++;
      this.fixes = fixes;
      this.declutter(fixes >= CLUSTER_FROM);
      void src.setData(unitFeatures(input.units, input.nowMs, input.staleAfterS, input.lang, input.selectedId) as SourceData);
    } else {
      const features: PointFeature<LiveUnitProps>[] = [];
      for (const u of input.units) {
        const f = liveUnitFeature(u, input.nowMs, input.staleAfterS, input.lang);
        if (f) features.push(f);
      }
      this.fixes = features.length;
      const cluster = features.length >= CLUSTER_FROM;
      if (cluster !== this.clustered) {
        this.clustered = cluster;
        void src.setClusterOptions({ cluster, clusterMaxZoom: CLUSTER_MAX_ZOOM, clusterRadius: CLUSTER_RADIUS_PX });
      }
      this.declutter(cluster);
      if (this.shown === null) {
        this.shown = new Map();
        diffUnits(this.shown, features);
        void src.setData({ type: "FeatureCollection", features } as SourceData);
      } else {
        const d = diffUnits(this.shown, features);
        if (d.add.length || d.update.length || d.remove.length) {
          void src.updateData({
            add: d.add as unknown as NonNullable<SourceDiff["add"]>,
            // Per changed unit: its geometry and every property (a lost heading is removed).
            update: d.update.map((f) => ({
              id: f.id,
              newGeometry: f.geometry,
              addOrUpdateProperties: props(f.properties),
              ...(f.properties.heading === undefined ? { removeProperties: ["heading"] } : {}),
            })),
            remove: d.remove,
          });
        }
      }
    }
    this.select(input.selectedId);
  }

  /** Limits labels and heading arrows to LARGE_FLEET_LABEL_MIN_ZOOM and up (a large fleet), or not. */
  private declutter(large: boolean): void {
    if (large === this.decluttered) return;
    this.decluttered = large;
    const [min, max] = large ? [LARGE_FLEET_LABEL_MIN_ZOOM, DETAIL_ZOOM_RANGE_SMALL[1]] : DETAIL_ZOOM_RANGE_SMALL;
    for (const id of LARGE_FLEET_DETAIL_LAYERS) if (this.map.getLayer(id)) this.map.setLayerZoomRange(id, min, max);
  }

  private select(id: string | null): void {
    if (id === this.selected) return;
    if (this.selected !== null) this.map.setFeatureState({ source: SOURCES.units, id: this.selected }, { selected: false });
    if (id !== null) this.map.setFeatureState({ source: SOURCES.units, id }, { selected: true });
    this.selected = id;
  }
}

function props(p: LiveUnitProps): { key: string; value: unknown }[] {
  return Object.entries(p).map(([key, value]) => ({ key, value }));
}
