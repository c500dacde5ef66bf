import { validateStyleMin } from "@maplibre/maplibre-gl-style-spec";
import { describe, expect, it } from "vitest";
import { assetUrls, buildStyle, LAYERS, nameExpression, type StyleOptions } from "./style";

const urls = assetUrls("tauri://localhost/index.html", "outpost://localhost");
const options = (over: Partial<StyleOptions> = {}): StyleOptions => ({
  theme: "night",
  lang: "zh",
  ...urls,
  attribution: "© OpenStreetMap contributors",
  minZoom: 0,
  maxZoom: 14,
  ...over,
});

/** Every string value in a JSON-like tree. */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === "string") out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => strings(x, out));
  else if (v && typeof v === "object") Object.values(v).forEach((x) => strings(x, out));
  return out;
}

describe("style builder", () => {
  it("builds URLs from the page and the shell's protocol without encoding the templates", () => {
    expect(urls.tilesUrl).toBe("outpost://localhost/tiles/{z}/{x}/{y}.pbf");
    expect(urls.glyphsUrl).toBe("tauri://localhost/map/glyphs/{fontstack}/{range}.pbf");
    expect(urls.spriteUrl).toBe("tauri://localhost/map/sprites/maki");
    expect(assetUrls("http://127.0.0.1:5173/", "http://outpost.localhost/").tilesUrl).toBe(
      "http://outpost.localhost/tiles/{z}/{x}/{y}.pbf",
    );
  });

  for (const theme of ["day", "night"] as const) {
    for (const lang of ["zh", "en"] as const) {
      it(`is a valid style with the operational layers (${theme}, ${lang})`, () => {
        const style = buildStyle(options({ theme, lang }));
        expect(validateStyleMin(style)).toEqual([]);
        const ids = style.layers.map((l) => l.id);
        for (const id of [LAYERS.units, LAYERS.incidents, LAYERS.facilities, LAYERS.incidentsPulse, LAYERS.unitsLabel]) {
          expect(ids).toContain(id);
        }
        // Operational layers are drawn above the basemap; units on top of incidents.
        expect(ids.indexOf(LAYERS.units)).toBeGreaterThan(ids.indexOf(LAYERS.incidents));
        expect(ids.indexOf(LAYERS.incidents)).toBeGreaterThan(ids.indexOf("place-label"));
        const units = style.layers.find((l) => l.id === LAYERS.units);
        expect(units && "source" in units ? units.source : null).toBe("units");
        expect(style.sources.pack).toMatchObject({ type: "vector", tiles: [urls.tilesUrl], attribution: "© OpenStreetMap contributors" });
        // Unit tiles stop at z12 (overzoomed above), keyed by unit id for diffs and feature state.
        expect(style.sources.units).toMatchObject({ type: "geojson", promoteId: "id", cluster: false, maxzoom: 12 });
      });
    }
  }

  it("requests nothing from outside the machine", () => {
    const style = buildStyle(options());
    const urlish = strings(style).filter((s) => /^[a-z][a-z0-9+.-]*:\/\//i.test(s));
    expect(urlish.sort()).toEqual([urls.glyphsUrl, urls.spriteUrl, urls.tilesUrl].sort());
    expect(JSON.stringify(style)).not.toMatch(/https?:\/\/(?!localhost)/);
    expect(JSON.stringify(style)).not.toMatch(/mapbox:|maptiler|openstreetmap\.org|demotiles/);
  });

  it("uses only the bundled Latin fontstack", () => {
    const style = buildStyle(options());
    const fonts = new Set(style.layers.flatMap((l) => ("layout" in l && l.layout && "text-font" in l.layout ? (l.layout["text-font"] as string[]) : [])));
    expect([...fonts]).toEqual(["KlokanTech Noto Sans Regular"]);
  });

  it("draws day and night in different colours", () => {
    const bg = (theme: "day" | "night") => {
      const l = buildStyle(options({ theme })).layers.find((x) => x.id === "background");
      return l && l.type === "background" ? l.paint?.["background-color"] : undefined;
    };
    expect(bg("day")).not.toEqual(bg("night"));
  });

  it("labels by language: zh prefers name_zh, en prefers name_en, both fall back to name", () => {
    expect(JSON.stringify(nameExpression("zh")).indexOf("name_zh")).toBeLessThan(JSON.stringify(nameExpression("zh")).indexOf("name_en"));
    expect(JSON.stringify(nameExpression("en")).indexOf("name_en")).toBeLessThan(JSON.stringify(nameExpression("en")).indexOf("name_zh"));
    const road = buildStyle(options({ lang: "en" })).layers.find((l) => l.id === "road-label");
    expect(road && road.type === "symbol" ? road.layout?.["text-field"] : null).toEqual(nameExpression("en"));
  });

  it("draws a played-back track under the incidents and units, its playhead on top", () => {
    const ids = buildStyle(options()).layers.map((l) => l.id);
    expect(ids.indexOf(LAYERS.trackLine)).toBeGreaterThan(ids.indexOf(LAYERS.trackCasing));
    expect(ids.indexOf(LAYERS.trackLine)).toBeLessThan(ids.indexOf(LAYERS.incidents));
    expect(ids.indexOf(LAYERS.trackHead)).toBeGreaterThan(ids.indexOf(LAYERS.unitsLabel));
    expect(ids.at(-1)).toBe(LAYERS.trackHeadLabel);
  });
});
