// The closest units' routes on the map (and the field laptop's route to its assignment): one
// line per route, the first bold in the accent colour, the others thinner, and a small ETA
// label at each unit's end. Sources and layers are added on every style load (a theme or
// language change replaces the style); data goes in with setData, only when it changed.

import type { GeoJSONSource, Map as MapLibreMap } from "maplibre-gl";
import type { ClosestUnits, FieldRoute, LatLon } from "../bindings";
import { closestRows, formatEtaShort } from "../dispatch";
import { type MapTheme, FONT, LAYERS, PALETTES } from "./style";

/** Source and layer ids of the routes. */
export const ROUTE_SOURCES = { lines: "routes", ends: "route-ends" } as const;
export const ROUTE_LAYERS = { casing: "routes-casing", line: "routes-line", ends: "route-ends", label: "route-ends-label" } as const;

/** The first route's colour (the console's accent, readable on both themes). */
export const ROUTE_ACCENT = "#2f81f7";
/** The other routes' colour. */
export const ROUTE_OTHER = "#6e7c91";

/** One route to draw: the line from the unit to the target, and its end label. */
export interface RouteLine {
  unitId: string;
  /** 1-based rank (1 is drawn bold). */
  rank: number;
  /** WGS-84, from the unit to the target. */
  line: LatLon[];
  /** Where the label goes (the unit's end). */
  labelAt: LatLon;
  /** E.g. `巡01 3:20`. */
  label: string;
}

/** The top five ranked units' routes of a ranking (units without a route are left out). */
export function closestRouteLines(c: ClosestUnits | null | undefined): RouteLine[] {
  const out: RouteLine[] = [];
  for (const { rank, unit } of closestRows(c).ranked) {
    const line = unit.route;
    if (!line || line.length < 2 || unit.eta_s === null) continue;
    out.push({
      unitId: unit.unit_id,
      rank,
      line,
      labelAt: line[0] as LatLon,
      label: `${unit.callsign} ${formatEtaShort(unit.eta_s)}`,
    });
  }
  return out;
}

/** The field laptop's route to its assignment as one bold line, or none. */
export function fieldRouteLines(r: FieldRoute | null | undefined, callsign: string): RouteLine[] {
  const route = r?.route;
  if (!route || route.line.length < 2) return [];
  return [{ unitId: callsign, rank: 1, line: route.line, labelAt: route.line[0] as LatLon, label: `${callsign} ${formatEtaShort(route.eta_s)}` }];
}

const ll = (p: LatLon): [number, number] => [p.lon, p.lat];

/** The lines' GeoJSON (the first route last, so it is drawn on top). */
export function routeLineFeatures(routes: RouteLine[]) {
  return {
    type: "FeatureCollection" as const,
    features: [...routes]
      .sort((a, b) => b.rank - a.rank)
      .map((r) => ({
        type: "Feature" as const,
        geometry: { type: "LineString" as const, coordinates: r.line.map(ll) },
        properties: { unit_id: r.unitId, rank: r.rank, first: r.rank === 1 },
      })),
  };
}

/** The end labels' GeoJSON. */
export function routeEndFeatures(routes: RouteLine[]) {
  return {
    type: "FeatureCollection" as const,
    features: routes.map((r) => ({
      type: "Feature" as const,
      geometry: { type: "Point" as const, coordinates: ll(r.labelAt) },
      properties: { unit_id: r.unitId, rank: r.rank, first: r.rank === 1, label: r.label },
    })),
  };
}

const EMPTY = { type: "FeatureCollection" as const, features: [] };

/**
 * Adds the route sources and layers (once per style: a no-op when present), below the
 * incidents and units so they stay clickable, the labels above them.
 */
export function addRouteLayers(map: MapLibreMap, theme: MapTheme): void {
  const p = PALETTES[theme];
  if (!map.getSource(ROUTE_SOURCES.lines)) map.addSource(ROUTE_SOURCES.lines, { type: "geojson", data: EMPTY });
  if (!map.getSource(ROUTE_SOURCES.ends)) map.addSource(ROUTE_SOURCES.ends, { type: "geojson", data: EMPTY });
  const below = map.getLayer(LAYERS.incidentsPulse) ? LAYERS.incidentsPulse : undefined;
  const width = (first: number, other: number) => ["case", ["get", "first"], first, other] as unknown as number;
  if (!map.getLayer(ROUTE_LAYERS.casing)) {
    map.addLayer(
      {
        id: ROUTE_LAYERS.casing,
        type: "line",
        source: ROUTE_SOURCES.lines,
        layout: { "line-join": "round", "line-cap": "round" },
        paint: { "line-color": p.halo, "line-width": width(9, 5), "line-opacity": 0.85 },
      },
      below,
    );
  }
  if (!map.getLayer(ROUTE_LAYERS.line)) {
    map.addLayer(
      {
        id: ROUTE_LAYERS.line,
        type: "line",
        source: ROUTE_SOURCES.lines,
        layout: { "line-join": "round", "line-cap": "round" },
        paint: {
          "line-color": ["case", ["get", "first"], ROUTE_ACCENT, ROUTE_OTHER] as unknown as string,
          "line-width": width(5.5, 2.5),
          "line-opacity": ["case", ["get", "first"], 1, 0.85] as unknown as number,
        },
      },
      below,
    );
  }
  const top = map.getLayer(LAYERS.trackHead) ? LAYERS.trackHead : undefined;
  if (!map.getLayer(ROUTE_LAYERS.label)) {
    map.addLayer(
      {
        id: ROUTE_LAYERS.label,
        type: "symbol",
        source: ROUTE_SOURCES.ends,
        layout: {
          "text-field": ["get", "label"],
          "text-font": [FONT],
          "text-size": ["case", ["get", "first"], 12, 10.5] as unknown as number,
          "text-offset": [0, 1.2],
          "text-anchor": "top",
          "text-allow-overlap": true,
          "symbol-sort-key": ["get", "rank"],
        },
        paint: {
          "text-color": ["case", ["get", "first"], ROUTE_ACCENT, p.label] as unknown as string,
          "text-halo-color": p.halo,
          "text-halo-width": 2,
        },
      },
      top,
    );
  }
}

/** What was last pushed, per map (JSON of the routes): setData only when it changes. */
const pushed = new WeakMap<MapLibreMap, string>();

/** Puts the routes on the map (empty list: none); skips the update when nothing changed. */
export function setRoutes(map: MapLibreMap, routes: RouteLine[], force = false): void {
  const key = JSON.stringify(routes);
  if (!force && pushed.get(map) === key) return;
  const lines = map.getSource(ROUTE_SOURCES.lines) as GeoJSONSource | undefined;
  const ends = map.getSource(ROUTE_SOURCES.ends) as GeoJSONSource | undefined;
  if (!lines || !ends) return;
  void lines.setData(routeLineFeatures(routes));
  void ends.setData(routeEndFeatures(routes));
  pushed.set(map, key);
}
