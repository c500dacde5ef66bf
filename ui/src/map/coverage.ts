// The 1-3-5 minute coverage layer: the road network coloured by how soon a station, post or
// available unit reaches it (checkpoints are no source; band 0 within 1 min green, 1 within 3 min amber,
// 2 within 5 min orange) as wide semi-transparent lines, and the holes (band 3, beyond 5 min)
// as thinner dashed red lines, all under the facilities, incidents and units. Added on every
// style load; the data goes in with setData only when a new CoverageView arrives.

import type { GeoJSONSource, Map as MapLibreMap } from "maplibre-gl";
import type { CoverageView } from "../bindings";
import { LAYERS } from "./style";

export const COVERAGE_SOURCE = "coverage";
export const COVERAGE_LAYERS = { bands: "coverage-bands", holes: "coverage-holes" } as const;

/** Colour per band: within 1, 3, 5 minutes, beyond 5 (holes). */
export const BAND_COLOURS = ["#2ea043", "#d4a72c", "#f0883e", "#e5342f"] as const;

/** The bands as GeoJSON: one MultiLineString per non-empty band, `band` 0..=3. */
export function coverageFeatures(c: CoverageView | null | undefined) {
  const features = (c?.bands ?? [])
    .map((lines, band) => ({ lines: lines.filter((l) => l.length >= 2), band }))
    .filter((b) => b.band <= 3 && b.lines.length > 0)
    .map((b) => ({
      type: "Feature" as const,
      geometry: { type: "MultiLineString" as const, coordinates: b.lines },
      properties: { band: b.band },
    }));
  return { type: "FeatureCollection" as const, features };
}

const EMPTY = { type: "FeatureCollection" as const, features: [] };

/** Adds the coverage source and its two layers below the facilities (no-op when present). */
export function addCoverageLayers(map: MapLibreMap): void {
  if (!map.getSource(COVERAGE_SOURCE)) map.addSource(COVERAGE_SOURCE, { type: "geojson", data: EMPTY });
  const below = map.getLayer(LAYERS.facilitiesBg) ? LAYERS.facilitiesBg : undefined;
  const colour = ["match", ["get", "band"], 0, BAND_COLOURS[0], 1, BAND_COLOURS[1], 2, BAND_COLOURS[2], BAND_COLOURS[3]] as unknown as string;
  if (!map.getLayer(COVERAGE_LAYERS.bands)) {
    map.addLayer(
      {
        id: COVERAGE_LAYERS.bands,
        type: "line",
        source: COVERAGE_SOURCE,
        filter: ["<", ["get", "band"], 3],
        layout: { "line-join": "round", "line-cap": "round" },
        paint: {
          "line-color": colour,
          "line-opacity": 0.45,
          "line-width": ["interpolate", ["linear"], ["zoom"], 10, 3, 14, 8, 18, 18] as unknown as number,
        },
      },
      below,
    );
  }
  if (!map.getLayer(COVERAGE_LAYERS.holes)) {
    map.addLayer(
      {
        id: COVERAGE_LAYERS.holes,
        type: "line",
        source: COVERAGE_SOURCE,
        filter: ["==", ["get", "band"], 3],
        layout: { "line-join": "round" },
        paint: {
          "line-color": BAND_COLOURS[3],
          "line-opacity": 0.8,
          "line-width": ["interpolate", ["linear"], ["zoom"], 10, 1.5, 14, 3, 18, 6] as unknown as number,
          "line-dasharray": [2, 1.5],
        },
      },
      below,
    );
  }
}

/** Last data pushed per map: a new CoverageView object replaces it, the same one is skipped. */
const pushed = new WeakMap<MapLibreMap, CoverageView | null>();

/** Puts a coverage view on the map (null: clears it); skips the update for the same object. */
export function setCoverage(map: MapLibreMap, c: CoverageView | null, force = false): void {
  if (!force && pushed.has(map) && pushed.get(map) === c) return;
  const src = map.getSource(COVERAGE_SOURCE) as GeoJSONSource | undefined;
  if (!src) return;
  void src.setData(coverageFeatures(c));
  pushed.set(map, c);
}
