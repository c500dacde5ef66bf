// Road closures on the map (issue 5): active closed roads as thick red dashed lines, closed
// areas as a hatched translucent red fill with an outline (lifted and expired ones are not
// drawn), a popup with the reason and expected end, and the layers of a closure being drawn
// (the clicked points, the snapped road line or the area ring). Sources and layers are added
// at runtime and again after every style change (`setStyle` drops them).

import * as maplibregl from "maplibre-gl";
import type { LatLon, RoadClosureView } from "../bindings";
import { type Drawing, formatRemaining, isActiveNow } from "../closures";
import { type Lang, t } from "../i18n";

/** Source ids (the e2e test reads the rendered features of CLOSURE_LAYERS). */
export const CLOSURE_SOURCES = { closures: "closures", drawing: "closure-drawing" } as const;

/** Layer ids. */
export const CLOSURE_LAYERS = {
  areaFill: "closures-area-fill",
  areaOutline: "closures-area-outline",
  line: "closures-line",
  drawFill: "closure-draw-fill",
  drawLine: "closure-draw-line",
  drawPoints: "closure-draw-points",
} as const;

/** The closure red (a signal colour no unit status uses). */
export const CLOSURE_COLOUR = "#e5142b";
/** The runtime-generated hatch pattern of closed areas. */
export const HATCH_IMAGE = "outpost-closure-hatch";

/** What MapView passes in: the closures, the drawing (or null) and where drawing clicks go. */
export interface ClosureLayerInput {
  list: RoadClosureView[];
  drawing: Drawing | null;
  onDrawClick: (at: LatLon) => void;
}

type Feature = { type: "Feature"; geometry: { type: string; coordinates: unknown }; properties: Record<string, string | number> };
type Collection = { type: "FeatureCollection"; features: Feature[] };

const lonLat = (p: LatLon): [number, number] => [p.lon, p.lat];

/** A closed ring (first corner repeated at the end), as GeoJSON wants it. */
function closedRing(ring: LatLon[]): [number, number][] {
  const r = ring.map(lonLat);
  const first = r[0];
  const last = r[r.length - 1];
  if (first && last && (first[0] !== last[0] || first[1] !== last[1])) r.push(first);
  return r;
}

/** Features of the closures that apply at `nowMs` (`kind`: line or area; `id`, `reason`, `ends_at`). */
export function closureFeatures(list: RoadClosureView[], nowMs: number): Collection {
  const features: Feature[] = [];
  for (const v of list) {
    if (!isActiveNow(v, nowMs)) continue;
    const c = v.closure;
    const properties = { id: c.closure_id, kind: c.shape.type, reason: c.reason, ends_at: c.ends_at ?? "" };
    if (c.shape.type === "line") {
      if (c.shape.points.length < 2) continue;
      features.push({ type: "Feature", geometry: { type: "LineString", coordinates: c.shape.points.map(lonLat) }, properties });
    } else {
      if (c.shape.ring.length < 3) continue;
      features.push({ type: "Feature", geometry: { type: "Polygon", coordinates: [closedRing(c.shape.ring)] }, properties });
    }
  }
  return { type: "FeatureCollection", features };
}

/** Features of a drawing: the clicks as points, and the snapped line or the ring (filled from 3 corners). */
export function drawingFeatures(d: Drawing | null): Collection {
  if (!d) return { type: "FeatureCollection", features: [] };
  const features: Feature[] = d.points.map((p, i) => ({ type: "Feature", geometry: { type: "Point", coordinates: lonLat(p) }, properties: { n: i + 1 } }));
  if (d.mode === "line") {
    const line = d.line && d.line.length >= 2 ? d.line : d.points;
    if (line.length >= 2) features.push({ type: "Feature", geometry: { type: "LineString", coordinates: line.map(lonLat) }, properties: { snapped: d.line ? 1 : 0 } });
  } else if (d.points.length >= 3) {
    features.push({ type: "Feature", geometry: { type: "Polygon", coordinates: [closedRing(d.points)] }, properties: {} });
  } else if (d.points.length === 2) {
    features.push({ type: "Feature", geometry: { type: "LineString", coordinates: d.points.map(lonLat) }, properties: {} });
  }
  return { type: "FeatureCollection", features };
}

/** RGBA pixels of a 16×16 tile of red diagonal stripes on transparent (the area hatch). */
export function hatchImage(size = 16): { width: number; height: number; data: Uint8Array } {
  const data = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if ((x + y) % size < 3) {
        const i = (y * size + x) * 4;
        data[i] = 229;
        data[i + 1] = 20;
        data[i + 2] = 43;
        data[i + 3] = 170;
      }
    }
  }
  return { width: size, height: size, data };
}

/** Adds the sources, the hatch image and the layers (closures under the facilities, the drawing on top). */
function addLayers(map: maplibregl.Map): void {
  if (!map.hasImage(HATCH_IMAGE)) map.addImage(HATCH_IMAGE, hatchImage(), { pixelRatio: 1 });
  for (const id of Object.values(CLOSURE_SOURCES)) if (!map.getSource(id)) map.addSource(id, { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  // Under the point overlays (facilities, incidents, units stay clickable on top).
  const before = map.getLayer("facilities-bg") ? "facilities-bg" : undefined;
  const add = (layer: maplibregl.LayerSpecification, beforeId?: string) => {
    if (!map.getLayer(layer.id)) map.addLayer(layer, beforeId);
  };
  add(
    { id: CLOSURE_LAYERS.areaFill, type: "fill", source: CLOSURE_SOURCES.closures, filter: ["==", ["get", "kind"], "area"], paint: { "fill-pattern": HATCH_IMAGE, "fill-opacity": 0.9 } },
    before,
  );
  add(
    {
      id: CLOSURE_LAYERS.areaOutline,
      type: "line",
      source: CLOSURE_SOURCES.closures,
      filter: ["==", ["get", "kind"], "area"],
      paint: { "line-color": CLOSURE_COLOUR, "line-width": 2.5, "line-opacity": 0.9 },
    },
    before,
  );
  add(
    {
      id: CLOSURE_LAYERS.line,
      type: "line",
      source: CLOSURE_SOURCES.closures,
      filter: ["==", ["get", "kind"], "line"],
      layout: { "line-cap": "butt", "line-join": "round" },
      paint: { "line-color": CLOSURE_COLOUR, "line-width": ["interpolate", ["linear"], ["zoom"], 12, 4, 17, 9], "line-dasharray": [1.6, 1] },
    },
    before,
  );
  add({
    id: CLOSURE_LAYERS.drawFill,
    type: "fill",
    source: CLOSURE_SOURCES.drawing,
    filter: ["==", ["geometry-type"], "Polygon"],
    paint: { "fill-color": CLOSURE_COLOUR, "fill-opacity": 0.25 },
  });
  add({
    id: CLOSURE_LAYERS.drawLine,
    type: "line",
    source: CLOSURE_SOURCES.drawing,
    filter: ["!=", ["geometry-type"], "Point"],
    paint: { "line-color": CLOSURE_COLOUR, "line-width": 4, "line-opacity": 0.85 },
  });
  add({
    id: CLOSURE_LAYERS.drawPoints,
    type: "circle",
    source: CLOSURE_SOURCES.drawing,
    filter: ["==", ["geometry-type"], "Point"],
    paint: { "circle-radius": 5, "circle-color": "#ffffff", "circle-stroke-color": CLOSURE_COLOUR, "circle-stroke-width": 2.5 },
  });
}

/** Handle returned by attachClosureLayers. */
export interface ClosureLayers {
  /** Pushes the current closures and drawing into the sources (call when they change). */
  update: () => void;
}

/**
 * Wires closures into `map`: layers added on every style load, data from `get()` pushed on
 * `update()` and once a minute (expired closures disappear), a popup on hover or click, and
 * map clicks sent to `onDrawClick` while a drawing takes clicks (the caller skips its own
 * click handling then). Call once, right after creating the map.
 */
export function attachClosureLayers(map: maplibregl.Map, get: () => ClosureLayerInput | undefined, lang: () => Lang): ClosureLayers {
  let ready = false;
  let crosshair = false;
  const popup = new maplibregl.Popup({ closeButton: false, closeOnClick: false, className: "closure-popup", offset: 8 });
  const setData = (id: string, data: Collection) => {
    const src = map.getSource(id) as maplibregl.GeoJSONSource | undefined;
    void src?.setData(data as unknown as Parameters<maplibregl.GeoJSONSource["setData"]>[0]);
  };
  const update = () => {
    if (!ready) return;
    const input = get();
    setData(CLOSURE_SOURCES.closures, closureFeatures(input?.list ?? [], Date.now()));
    setData(CLOSURE_SOURCES.drawing, drawingFeatures(input?.drawing ?? null));
    // Only on a change: the other layers set the pointer cursor on hover.
    const want = drawingTakesClicks(input);
    if (want !== crosshair) map.getCanvas().style.cursor = want ? "crosshair" : "";
    crosshair = want;
  };
  map.on("style.load", () => {
    addLayers(map);
    ready = true;
    update();
  });
  if (map.isStyleLoaded()) {
    addLayers(map);
    ready = true;
  }
  const timer = setInterval(update, 60_000);
  map.on("remove", () => clearInterval(timer));

  map.on("click", (e) => {
    const d = get()?.drawing;
    if (d?.phase === "drawing") get()?.onDrawClick({ lat: e.lngLat.lat, lon: e.lngLat.lng });
  });
  const show = (e: maplibregl.MapLayerMouseEvent) => {
    if (get()?.drawing?.phase === "drawing") return;
    const props = e.features?.[0]?.properties as { reason?: string; ends_at?: string } | undefined;
    if (!props?.reason) return;
    const l = lang();
    const end = formatRemaining(props.ends_at ? props.ends_at : null, Date.now(), l);
    popup.setLngLat(e.lngLat).setText(t(l, "closure.popup", { reason: props.reason, end })).addTo(map);
  };
  for (const layer of [CLOSURE_LAYERS.line, CLOSURE_LAYERS.areaFill]) {
    map.on("mousemove", layer, show);
    map.on("click", layer, show);
    map.on("mouseleave", layer, () => popup.remove());
  }
  return { update };
}

/** True while map clicks belong to a closure drawing (MapView then selects nothing). */
export function drawingTakesClicks(input: ClosureLayerInput | undefined): boolean {
  return input?.drawing?.phase === "drawing";
}
