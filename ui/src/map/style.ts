// The project's MapLibre style, built in TypeScript from the area pack's layer schema
// (see the team contract: ne_land, ne_countries, water, waterway, landuse, building, road,
// place, poi, housenumber, boundary) plus the operational overlay (facilities, incidents,
// units) as GeoJSON sources. A muted CAD basemap: the operational layers carry the colour.
//
// Every URL comes from the caller (the pack's custom protocol and the bundle's own files);
// nothing here may point outside the machine.

import type {
  ExpressionSpecification,
  LayerSpecification,
  StyleSpecification,
} from "maplibre-gl";
import type { Lang } from "../i18n";

/** Concrete map theme. */
export type MapTheme = "day" | "night";

/** The one Latin fontstack that ships in the bundle (ui/public/map/glyphs). */
export const FONT = "KlokanTech Noto Sans Regular";

/** System fonts MapLibre draws CJK labels with (`localIdeographFontFamily`). */
export const CJK_FONT_FAMILY =
  "'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', 'Microsoft YaHei', 'PingFang SC', sans-serif";

/** Source ids of the overlay. */
export const SOURCES = {
  pack: "pack",
  facilities: "facilities",
  incidents: "incidents",
  units: "units",
  track: "track",
  trackHead: "track-head",
} as const;

/**
 * The highest zoom the `units` source makes tiles for; above it MapLibre overzooms them (the
 * worker lays the features out for the zoom shown, so symbols, labels and selection work as
 * at any zoom). A district view (zoom 13-14, 1600x1000 px) is then a handful of z12 tiles
 * instead of ~40 z14 ones: each unit-source write rebuilds a few tiles in the worker, which
 * arrive in fewer batches and so cost fewer redraws. Positions keep ~1 m precision (a z12 tile
 * is ~7 km wide at 42.5° N over 8,192 tile units).
 */
export const UNIT_SOURCE_MAX_ZOOM = 12;

/** Layer ids other code and the e2e tests rely on. */
export const LAYERS = {
  units: "units",
  unitsHeading: "units-heading",
  unitsLabel: "units-label",
  /** Clusters of units (only with many units, at low zoom) and their counts. */
  unitsClusters: "units-clusters",
  unitsClusterCount: "units-cluster-count",
  incidents: "incidents",
  incidentsPulse: "incidents-pulse",
  incidentsLabel: "incidents-label",
  facilities: "facilities",
  facilitiesBg: "facilities-bg",
  trackCasing: "track-casing",
  trackLine: "track-line",
  trackHead: "track-head",
  trackHeadLabel: "track-head-label",
} as const;

/** The played-back track's colour: a cyan no unit status uses. */
export const TRACK_COLOUR = "#00b4d8";

/** Layers that open a card when clicked. */
export const CLICKABLE_LAYERS = [LAYERS.units, LAYERS.incidents, LAYERS.facilities];

/** A unit feature, not a cluster of them. */
const UNCLUSTERED: ExpressionSpecification = ["!", ["has", "point_count"]];
/** The selected unit (feature state `selected`, set by the unit layer). */
const UNIT_SELECTED: ExpressionSpecification = ["boolean", ["feature-state", "selected"], false];

/** Name of the runtime-generated heading arrow image (added with `map.addImage`, SDF). */
export const HEADING_IMAGE = "outpost-heading";

/** Inputs of the style. */
export interface StyleOptions {
  theme: MapTheme;
  lang: Lang;
  /** Tile URL template, e.g. `outpost://localhost/tiles/{z}/{x}/{y}.pbf`. */
  tilesUrl: string;
  /** Glyph URL template with `{fontstack}` and `{range}`. */
  glyphsUrl: string;
  /** Sprite base URL (MapLibre appends `.json`, `@2x.png`, …). */
  spriteUrl: string;
  /** Attribution of the pack, e.g. "© OpenStreetMap contributors". */
  attribution: string;
  minZoom: number;
  maxZoom: number;
}

/** Colours of a theme. */
export interface Palette {
  background: string;
  land: string;
  landuseUrban: string;
  landuseGreen: string;
  water: string;
  waterLine: string;
  building: string;
  buildingLine: string;
  roadMajor: string;
  roadMinor: string;
  roadCasing: string;
  roadPath: string;
  boundary: string;
  label: string;
  labelMuted: string;
  halo: string;
  iconBg: string;
}

export const PALETTES: Record<MapTheme, Palette> = {
  day: {
    background: "#eef0f2",
    land: "#f4f5f6",
    landuseUrban: "#e6e7ea",
    landuseGreen: "#dfe8dc",
    water: "#c4d6e6",
    waterLine: "#a9c3da",
    building: "#d9dbdf",
    buildingLine: "#c6c9ce",
    roadMajor: "#ffffff",
    roadMinor: "#ffffff",
    roadCasing: "#b9bec6",
    roadPath: "#b0b5bc",
    boundary: "#8d7fa8",
    label: "#2b3038",
    labelMuted: "#5c6470",
    halo: "#ffffff",
    iconBg: "#ffffff",
  },
  night: {
    background: "#0d1117",
    land: "#121820",
    landuseUrban: "#171e27",
    landuseGreen: "#111b16",
    water: "#0a2136",
    waterLine: "#123452",
    building: "#1c2430",
    buildingLine: "#263041",
    roadMajor: "#3a4657",
    roadMinor: "#2a3442",
    roadCasing: "#0b0f15",
    roadPath: "#2f3a48",
    boundary: "#6d5f8a",
    label: "#c9d1d9",
    labelMuted: "#8b949e",
    halo: "#0d1117",
    iconBg: "#d0d7de",
  },
};

/** Operational colours (the same in both themes; chosen to read on both). */
export const UNIT_STATUS_COLOURS = {
  available: "#2ea043",
  dispatched: "#d4a72c",
  en_route: "#f0883e",
  on_scene: "#bc4cd6",
  busy: "#4c8fd6",
  out_of_service: "#6e7681",
} as const;

export const PRIORITY_COLOURS = {
  P1: "#e5342f",
  P2: "#f0883e",
  P3: "#d4a72c",
  P4: "#6c8ebf",
} as const;

/** Facility kind -> sprite icon (maki). */
export const FACILITY_ICONS = { station: "police", post: "town-hall", checkpoint: "triangle" } as const;

/**
 * A label expression for `lang`: the first non-empty of name_zh/name_en/name (zh) or
 * name_en/name/name_zh (en). Attributes may be missing or empty strings in the tiles.
 */
export function nameExpression(lang: Lang): ExpressionSpecification {
  const order = lang === "zh" ? ["name_zh", "name", "name_en"] : ["name_en", "name", "name_zh"];
  const nonEmpty = (attr: string): ExpressionSpecification => [
    ">",
    ["length", ["to-string", ["coalesce", ["get", attr], ""]]],
    0,
  ];
  const [a, b, c] = order as [string, string, string];
  return ["case", nonEmpty(a), ["get", a], nonEmpty(b), ["get", b], ["coalesce", ["get", c], ""]];
}

const empty = { type: "FeatureCollection" as const, features: [] };

/** Road width in pixels by zoom; `base` is the width at z12 (a number or a data expression). */
function roadWidth(base: number | ExpressionSpecification, extra = 0): ExpressionSpecification {
  const at = (k: number): number | ExpressionSpecification =>
    typeof base === "number" ? base * k + extra : ["+", ["*", base, k], extra];
  return ["interpolate", ["exponential", 1.5], ["zoom"], 8, at(0.3), 12, at(1), 14, at(2.2), 18, at(8)];
}

/** A line of the pack's `road` layer for one group of road classes, in one colour and width. */
function roadLine(id: string, filter: ExpressionSpecification, color: string, width: number): LayerSpecification {
  return {
    id,
    type: "line",
    source: SOURCES.pack,
    "source-layer": "road",
    filter,
    layout: { "line-cap": "round", "line-join": "round" },
    paint: { "line-color": color, "line-width": roadWidth(width) },
  };
}

/** Builds the whole style: basemap from the pack plus empty overlay sources. */
export function buildStyle(o: StyleOptions): StyleSpecification {
  const p = PALETTES[o.theme];
  const name = nameExpression(o.lang);
  const font = [FONT];
  const src = SOURCES.pack;
  const major: ExpressionSpecification = ["match", ["get", "class"], ["motorway", "trunk", "primary"], true, false];
  const mid: ExpressionSpecification = ["match", ["get", "class"], ["secondary", "tertiary"], true, false];
  const minor: ExpressionSpecification = ["match", ["get", "class"], ["minor", "service"], true, false];
  const path: ExpressionSpecification = ["match", ["get", "class"], ["track", "path"], true, false];

  const basemap: LayerSpecification[] = [
    { id: "background", type: "background", paint: { "background-color": p.background } },
    { id: "ne-land", type: "fill", source: src, "source-layer": "ne_land", maxzoom: 9, paint: { "fill-color": p.land } },
    {
      id: "landuse-urban",
      type: "fill",
      source: src,
      "source-layer": "landuse",
      filter: ["match", ["get", "class"], ["residential", "commercial", "industrial", "retail"], true, false],
      paint: { "fill-color": p.landuseUrban },
    },
    {
      id: "landuse-green",
      type: "fill",
      source: src,
      "source-layer": "landuse",
      filter: ["match", ["get", "class"], ["forest", "wood", "grass", "park", "meadow", "cemetery"], true, false],
      paint: { "fill-color": p.landuseGreen },
    },
    { id: "water", type: "fill", source: src, "source-layer": "water", paint: { "fill-color": p.water } },
    {
      id: "waterway",
      type: "line",
      source: src,
      "source-layer": "waterway",
      paint: {
        "line-color": p.waterLine,
        "line-width": ["match", ["get", "class"], ["river", "canal"], 1.6, 0.8],
      },
    },
    {
      id: "building",
      type: "fill",
      source: src,
      "source-layer": "building",
      minzoom: 13,
      paint: { "fill-color": p.building, "fill-outline-color": p.buildingLine },
    },
    {
      id: "road-path",
      type: "line",
      source: src,
      "source-layer": "road",
      filter: path,
      minzoom: 13,
      paint: { "line-color": p.roadPath, "line-width": 1, "line-dasharray": [2, 2] },
    },
    {
      id: "road-casing",
      type: "line",
      source: src,
      "source-layer": "road",
      filter: ["any", major, mid, minor],
      layout: { "line-cap": "round", "line-join": "round" },
      paint: {
        "line-color": p.roadCasing,
        "line-width": roadWidth(["case", major, 2.6, mid, 1.8, 1], 1.2),
        "line-opacity": ["interpolate", ["linear"], ["zoom"], 10, 0, 12, 1],
      },
    },
    roadLine("road-minor", minor, p.roadMinor, 1),
    roadLine("road-mid", mid, p.roadMajor, 1.8),
    roadLine("road-major", major, p.roadMajor, 2.6),
    {
      id: "road-tunnel",
      type: "line",
      source: src,
      "source-layer": "road",
      filter: ["==", ["get", "brunnel"], "tunnel"],
      paint: { "line-color": p.background, "line-width": roadWidth(1), "line-opacity": 0.6, "line-dasharray": [1, 1] },
    },
    {
      id: "boundary",
      type: "line",
      source: src,
      "source-layer": "boundary",
      filter: ["<=", ["to-number", ["get", "admin_level"], 10], 4],
      paint: { "line-color": p.boundary, "line-width": 1.2, "line-dasharray": [3, 2] },
    },
    {
      id: "ne-countries",
      type: "line",
      source: src,
      "source-layer": "ne_countries",
      maxzoom: 7,
      paint: { "line-color": p.boundary, "line-width": 0.8 },
    },
    {
      id: "road-label",
      type: "symbol",
      source: src,
      "source-layer": "road",
      minzoom: 13,
      layout: {
        "symbol-placement": "line",
        "text-field": name,
        "text-font": font,
        "text-size": 11,
        "text-max-angle": 30,
      },
      paint: { "text-color": p.labelMuted, "text-halo-color": p.halo, "text-halo-width": 1.5 },
    },
    {
      id: "housenumber",
      type: "symbol",
      source: src,
      "source-layer": "housenumber",
      minzoom: 16,
      layout: { "text-field": ["get", "housenumber"], "text-font": font, "text-size": 9 },
      paint: { "text-color": p.labelMuted, "text-halo-color": p.halo, "text-halo-width": 1 },
    },
    {
      id: "poi-label",
      type: "symbol",
      source: src,
      "source-layer": "poi",
      minzoom: 15,
      filter: ["match", ["get", "class"], ["police", "hospital", "fire_station", "school", "townhall"], true, false],
      layout: {
        "icon-image": [
          "match",
          ["get", "class"],
          "police",
          "police",
          "hospital",
          "hospital",
          "fire_station",
          "fire-station",
          "townhall",
          "town-hall",
          "circle",
        ],
        "icon-size": 0.8,
        "text-field": name,
        "text-font": font,
        "text-size": 10,
        "text-offset": [0, 1.1],
        "text-anchor": "top",
        "text-optional": true,
      },
      paint: { "text-color": p.labelMuted, "text-halo-color": p.halo, "text-halo-width": 1.2, "icon-opacity": 0.6 },
    },
    {
      id: "place-label",
      type: "symbol",
      source: src,
      "source-layer": "place",
      layout: {
        "text-field": name,
        "text-font": font,
        "text-size": [
          "match",
          ["get", "class"],
          ["country", "state"],
          14,
          ["city", "town"],
          14,
          ["village", "suburb"],
          12,
          10,
        ],
        "symbol-sort-key": [
          "match",
          ["get", "class"],
          ["country", "state"],
          0,
          ["city", "town"],
          1,
          ["village", "suburb"],
          2,
          3,
        ],
        "text-max-width": 8,
      },
      paint: { "text-color": p.label, "text-halo-color": p.halo, "text-halo-width": 1.5 },
    },
  ];

  const overlay: LayerSpecification[] = [
    {
      id: LAYERS.facilitiesBg,
      type: "circle",
      source: SOURCES.facilities,
      paint: {
        "circle-radius": ["match", ["get", "kind"], "station", 11, 9],
        "circle-color": p.iconBg,
        "circle-stroke-color": "#1f6feb",
        "circle-stroke-width": ["match", ["get", "kind"], "station", 2.5, 1.5],
      },
    },
    {
      id: LAYERS.facilities,
      type: "symbol",
      source: SOURCES.facilities,
      layout: {
        "icon-image": ["get", "icon"],
        "icon-size": ["match", ["get", "kind"], "station", 1.1, 0.9],
        "icon-allow-overlap": true,
        "icon-ignore-placement": true,
        "text-field": ["get", "label"],
        "text-font": font,
        "text-size": 11,
        "text-offset": [0, 1.3],
        "text-anchor": "top",
        "text-optional": true,
      },
      paint: { "text-color": p.label, "text-halo-color": p.halo, "text-halo-width": 1.5 },
    },
    {
      id: LAYERS.trackCasing,
      type: "line",
      source: SOURCES.track,
      layout: { "line-join": "round", "line-cap": "round" },
      paint: { "line-color": p.halo, "line-width": 6, "line-opacity": 0.8 },
    },
    {
      id: LAYERS.trackLine,
      type: "line",
      source: SOURCES.track,
      layout: { "line-join": "round", "line-cap": "round" },
      paint: { "line-color": TRACK_COLOUR, "line-width": 3 },
    },
    {
      id: LAYERS.incidentsPulse,
      type: "circle",
      source: SOURCES.incidents,
      filter: ["all", ["==", ["get", "priority"], "P1"], ["!", ["get", "acknowledged"]], ["!=", ["get", "status"], "closed"]],
      paint: {
        "circle-radius": 14,
        "circle-color": PRIORITY_COLOURS.P1,
        "circle-opacity": 0.35,
        "circle-stroke-color": PRIORITY_COLOURS.P1,
        "circle-stroke-width": 2,
        "circle-stroke-opacity": 0.8,
      },
    },
    {
      id: LAYERS.incidents,
      type: "circle",
      source: SOURCES.incidents,
      paint: {
        "circle-radius": ["match", ["get", "priority"], "P1", 9, "P2", 8, 7],
        "circle-color": ["match", ["get", "priority"], "P1", PRIORITY_COLOURS.P1, "P2", PRIORITY_COLOURS.P2, "P3", PRIORITY_COLOURS.P3, PRIORITY_COLOURS.P4],
        "circle-opacity": ["case", ["==", ["get", "status"], "closed"], 0.35, 1],
        "circle-stroke-color": ["case", ["get", "selected"], "#ffffff", "#000000"],
        "circle-stroke-width": ["case", ["get", "selected"], 3, 1.5],
      },
    },
    {
      id: LAYERS.incidentsLabel,
      type: "symbol",
      source: SOURCES.incidents,
      layout: {
        "text-field": ["get", "label"],
        "text-font": font,
        "text-size": 11,
        "text-offset": [0, -1.6],
        "text-anchor": "bottom",
        // P1 labels are placed first; a label that would collide is dropped, the dot stays.
        "symbol-sort-key": ["match", ["get", "priority"], "P1", 0, "P2", 1, "P3", 2, 3],
      },
      paint: { "text-color": p.label, "text-halo-color": p.halo, "text-halo-width": 1.8 },
    },
    {
      id: LAYERS.unitsClusters,
      type: "circle",
      source: SOURCES.units,
      filter: ["has", "point_count"],
      paint: {
        "circle-radius": ["step", ["get", "point_count"], 12, 10, 15, 50, 19, 200, 24],
        "circle-color": p.label,
        "circle-opacity": 0.85,
        "circle-stroke-color": p.halo,
        "circle-stroke-width": 2,
      },
    },
    {
      id: LAYERS.unitsClusterCount,
      type: "symbol",
      source: SOURCES.units,
      filter: ["has", "point_count"],
      layout: {
        "text-field": ["get", "point_count_abbreviated"],
        "text-font": font,
        "text-size": 11,
        "text-allow-overlap": true,
        "text-ignore-placement": true,
      },
      paint: { "text-color": p.halo },
    },
    {
      id: LAYERS.unitsHeading,
      type: "symbol",
      source: SOURCES.units,
      filter: ["all", UNCLUSTERED, ["has", "heading"]],
      layout: {
        "icon-image": HEADING_IMAGE,
        "icon-rotate": ["get", "heading"],
        "icon-rotation-alignment": "map",
        "icon-allow-overlap": true,
        "icon-ignore-placement": true,
      },
      paint: {
        "icon-color": ["get", "colour"],
        "icon-halo-color": p.halo,
        "icon-halo-width": 1,
        "icon-opacity": ["case", ["get", "stale"], 0.35, 1],
      },
    },
    {
      id: LAYERS.units,
      type: "circle",
      source: SOURCES.units,
      filter: UNCLUSTERED,
      paint: {
        "circle-radius": 7,
        "circle-color": ["get", "colour"],
        "circle-opacity": ["case", ["get", "stale"], 0.3, 1],
        // Selection is feature state (set by UnitLayer): selecting sends no data to the worker.
        "circle-stroke-color": ["case", UNIT_SELECTED, "#ffffff", ["get", "stale"], "#8b949e", p.halo],
        "circle-stroke-width": ["case", UNIT_SELECTED, 3, ["get", "stale"], 2.5, 1.5],
        "circle-stroke-opacity": 1,
      },
    },
    {
      id: LAYERS.unitsLabel,
      type: "symbol",
      source: SOURCES.units,
      filter: UNCLUSTERED,
      layout: {
        "text-field": ["get", "label"],
        "text-font": font,
        "text-size": 11,
        "text-offset": [0.9, 0],
        "text-anchor": "left",
        "text-justify": "left",
        // In a crowded view some callsigns give way; zooming in shows them all.
        "text-padding": 1,
      },
      paint: {
        "text-color": ["case", ["get", "stale"], p.labelMuted, p.label],
        "text-halo-color": p.halo,
        "text-halo-width": 1.8,
      },
    },
    {
      id: LAYERS.trackHead,
      type: "circle",
      source: SOURCES.trackHead,
      paint: {
        "circle-radius": 8,
        "circle-color": TRACK_COLOUR,
        "circle-stroke-color": "#ffffff",
        "circle-stroke-width": 3,
      },
    },
    {
      id: LAYERS.trackHeadLabel,
      type: "symbol",
      source: SOURCES.trackHead,
      layout: {
        "text-field": ["get", "label"],
        "text-font": font,
        "text-size": 12,
        "text-offset": [0, -1.4],
        "text-anchor": "bottom",
        "text-allow-overlap": true,
        "text-ignore-placement": true,
      },
      paint: { "text-color": p.label, "text-halo-color": p.halo, "text-halo-width": 2 },
    },
  ];

  return {
    version: 8,
    name: `outpost-${o.theme}`,
    glyphs: o.glyphsUrl,
    sprite: o.spriteUrl,
    sources: {
      [SOURCES.pack]: {
        type: "vector",
        tiles: [o.tilesUrl],
        minzoom: o.minZoom,
        maxzoom: o.maxZoom,
        attribution: o.attribution,
      },
      [SOURCES.facilities]: { type: "geojson", data: empty },
      [SOURCES.incidents]: { type: "geojson", data: empty, promoteId: "id" },
      // Clustering is switched on by UnitLayer from CLUSTER_FROM units (setClusterOptions).
      // Tiles up to UNIT_SOURCE_MAX_ZOOM only, overzoomed above it (see there).
      [SOURCES.units]: { type: "geojson", data: empty, promoteId: "id", cluster: false, maxzoom: UNIT_SOURCE_MAX_ZOOM },
      [SOURCES.track]: { type: "geojson", data: empty },
      [SOURCES.trackHead]: { type: "geojson", data: empty },
    },
    layers: [...basemap, ...overlay],
  };
}

/**
 * URLs for the style. Glyphs and sprites ship in the bundle and are addressed absolutely from
 * the page's location (MapLibre needs absolute URLs); tiles come from the shell's protocol.
 */
export function assetUrls(pageHref: string, mapBaseUrl: string) {
  // Resolve "map/" against the page, then append the templates by hand: URL() would
  // percent-encode the `{fontstack}` braces.
  const assets = new URL("map/", pageHref).href;
  return {
    tilesUrl: `${mapBaseUrl.replace(/\/+$/, "")}/tiles/{z}/{x}/{y}.pbf`,
    glyphsUrl: `${assets}glyphs/{fontstack}/{range}.pbf`,
    spriteUrl: `${assets}sprites/maki`,
  };
}
