import { describe, expect, it } from "vitest";
import type * as maplibregl from "maplibre-gl";
import type { UnitView } from "../bindings";
import { MockBackend } from "../mock/backend";
import { CLUSTER_FROM, CLUSTER_MAX_ZOOM, diffUnits, LARGE_FLEET_LABEL_MIN_ZOOM, liveUnitFeature, UnitLayer } from "./units";
import { UNIT_SOURCE_MAX_ZOOM, UNIT_STATUS_COLOURS } from "./style";

const NOW = Date.parse("2026-11-29T10:00:00Z");

/** A map with only what UnitLayer touches: the units source and feature state, recorded. */
function fakeMap() {
  const calls: { op: string; arg: unknown }[] = [];
  const source = {
    setData: (d: unknown) => (calls.push({ op: "setData", arg: d }), Promise.resolve()),
    updateData: (d: unknown) => (calls.push({ op: "updateData", arg: d }), Promise.resolve()),
    setClusterOptions: (o: unknown) => (calls.push({ op: "cluster", arg: o }), Promise.resolve()),
  };
  const map = {
    getSource: (id: string) => (id === "units" ? source : undefined),
    setFeatureState: (f: { id: string }, s: unknown) => calls.push({ op: "state", arg: [f.id, s] }),
    getLayer: (id: string) => (id === "units-label" || id === "units-heading" ? { id } : undefined),
    setLayerZoomRange: (id: string, min: number, max: number) => calls.push({ op: "zoomRange", arg: [id, min, max] }),
  };
  return { map: map as unknown as maplibregl.Map, calls };
}

/** A scheduler that runs on demand (stands for requestAnimationFrame). */
function manualFrames() {
  const queue: (() => void)[] = [];
  return { schedule: (cb: () => void) => queue.push(cb), frame: () => queue.splice(0).forEach((cb) => cb()) };
}

function moved(u: UnitView, dLat: number): UnitView {
  return { ...u, fix: u.fix && { ...u.fix, position: { ...u.fix.position, lat: u.fix.position.lat + dLat } } };
}

describe("unit layer", () => {
  const units = new MockBackend({ now: () => NOW }).consoleState().units;
  const input = (us: UnitView[], selectedId: string | null = null) => ({ units: us, nowMs: NOW, staleAfterS: 120, lang: "en" as const, selectedId });

  it("draws a unit as the console always has: status colour, stale, label with age, heading", () => {
    const u04 = units.find((u) => u.id === "u-04") as UnitView;
    expect(liveUnitFeature(u04, NOW, 120, "en")?.properties).toMatchObject({ stale: true, label: "摩01\n6 min", colour: UNIT_STATUS_COLOURS[u04.status] });
    const u01 = units.find((u) => u.id === "u-01") as UnitView;
    expect(liveUnitFeature(u01, NOW, 120, "en")).toMatchObject({ id: "u-01", geometry: { coordinates: [1.5228, 42.5071] }, properties: { heading: 45, stale: false } });
    expect(liveUnitFeature({ ...u01, fix: null }, NOW, 120, "en")).toBeNull();
  });

  it("diffs against what was sent: adds, moves, removals, nothing for an unchanged unit", () => {
    const shown = new Map<string, string>();
    const all = units.map((u) => liveUnitFeature(u, NOW, 120, "en")).filter((f) => f !== null);
    expect(diffUnits(shown, all).add).toHaveLength(6);
    const next = units.filter((u) => u.id !== "u-02").map((u) => (u.id === "u-01" ? moved(u, 0.001) : u));
    const d = diffUnits(shown, next.map((u) => liveUnitFeature(u, NOW, 120, "en")).filter((f) => f !== null));
    expect(d.add).toEqual([]);
    expect(d.update.map((f) => f.id)).toEqual(["u-01"]);
    expect(d.remove).toEqual(["u-02"]);
    expect(shown.size).toBe(5);
  });

  it("sends the whole set once, then only diffs, at most once per frame; selection is feature state", () => {
    const { map, calls } = fakeMap();
    const frames = manualFrames();
    const layer = new UnitLayer(map, "diff", 0, frames.schedule);
    layer.update(input(units));
    layer.update(input(units));
    expect(calls).toEqual([]);
    frames.frame();
    expect(calls.map((c) => c.op)).toEqual(["setData"]);
    expect((calls[0]?.arg as { features: unknown[] }).features).toHaveLength(6);
    calls.length = 0;
    // Two state changes in one frame: one diff with the newest position only.
    layer.update(input(units.map((u) => (u.id === "u-03" ? moved(u, 0.001) : u))));
    const last = units.map((u) => (u.id === "u-03" ? moved(u, 0.002) : u));
    layer.update(input(last));
    frames.frame();
    expect(calls).toHaveLength(1);
    const diff = calls[0]?.arg as { update: { id: string; newGeometry: { coordinates: number[] } }[]; add: unknown[]; remove: unknown[] };
    expect(diff.update.map((x) => x.id)).toEqual(["u-03"]);
    const u03 = units.find((u) => u.id === "u-03") as UnitView;
    expect(diff.update[0]?.newGeometry.coordinates[1]).toBeCloseTo((u03.fix?.position.lat ?? 0) + 0.002, 9);
    calls.length = 0;
    // Selecting: feature state at once, no data sent.
    layer.update(input(last, "u-05"));
    expect(calls).toEqual([{ op: "state", arg: ["u-05", { selected: true }] }]);
    frames.frame();
    layer.update(input(last, "u-01"));
    expect(calls.slice(1)).toEqual([
      { op: "state", arg: ["u-05", { selected: false }] },
      { op: "state", arg: ["u-01", { selected: true }] },
    ]);
  });

  it("clusters from CLUSTER_FROM units with a fix, and stops below it", () => {
    const { map, calls } = fakeMap();
    const frames = manualFrames();
    const layer = new UnitLayer(map, "diff", 0, frames.schedule);
    const base = units[0] as UnitView;
    const many = Array.from({ length: CLUSTER_FROM }, (_, i) => moved({ ...base, id: `m-${i}` }, i * 1e-4));
    layer.update(input(many));
    frames.frame();
    expect(calls.filter((c) => c.op === "cluster").map((c) => (c.arg as { cluster: boolean }).cluster)).toEqual([true]);
    expect(layer.isClustered).toBe(true);
    layer.update(input(many.slice(1)));
    frames.frame();
    expect(calls.filter((c) => c.op === "cluster").map((c) => (c.arg as { cluster: boolean }).cluster)).toEqual([true, false]);
  });

  it("clusters only at overview zooms, below the source's max zoom: a district view shows every unit", () => {
    const { map, calls } = fakeMap();
    const frames = manualFrames();
    const layer = new UnitLayer(map, "diff", 0, frames.schedule);
    const base = units[0] as UnitView;
    layer.update(input(Array.from({ length: CLUSTER_FROM }, (_, i) => moved({ ...base, id: `m-${i}` }, i * 1e-4))));
    frames.frame();
    expect(calls.filter((c) => c.op === "cluster").map((c) => c.arg)).toEqual([{ cluster: true, clusterMaxZoom: 11, clusterRadius: 40 }]);
    expect(CLUSTER_MAX_ZOOM).toBe(11);
    expect(UNIT_SOURCE_MAX_ZOOM).toBe(12);
    expect(CLUSTER_MAX_ZOOM).toBeLessThan(UNIT_SOURCE_MAX_ZOOM);
  });

  it("a large fleet draws callsign labels and heading arrows only from LARGE_FLEET_LABEL_MIN_ZOOM; a small fleet at every zoom", () => {
    const { map, calls } = fakeMap();
    const frames = manualFrames();
    const layer = new UnitLayer(map, "diff", 0, frames.schedule);
    const zoomRanges = () => calls.filter((c) => c.op === "zoomRange").map((c) => c.arg);
    // A small fleet: the label and arrow layers are left as the style has them.
    layer.update(input(units));
    frames.frame();
    expect(zoomRanges()).toEqual([]);
    expect(layer.isDecluttered).toBe(false);
    // CLUSTER_FROM units with a fix: labels and arrows from zoom 15, switched once.
    const base = units[0] as UnitView;
    const many = Array.from({ length: CLUSTER_FROM }, (_, i) => moved({ ...base, id: `m-${i}` }, i * 1e-4));
    layer.update(input(many));
    frames.frame();
    layer.update(input(many.map((u, i) => (i === 0 ? moved(u, 0.001) : u))));
    frames.frame();
    expect(LARGE_FLEET_LABEL_MIN_ZOOM).toBe(15);
    expect(zoomRanges()).toEqual([
      ["units-label", 15, 24],
      ["units-heading", 15, 24],
    ]);
    expect(layer.isDecluttered).toBe(true);
    // One unit fewer with a fix: back to labels at every zoom.
    layer.update(input(many.map((u, i) => (i === 0 ? { ...u, fix: null } : u))));
    frames.frame();
    expect(zoomRanges()).toEqual([
      ["units-label", 15, 24],
      ["units-heading", 15, 24],
      ["units-label", 0, 24],
      ["units-heading", 0, 24],
    ]);
    expect(layer.isDecluttered).toBe(false);
    // A new style (its label layer has every zoom again) with a large fleet: switched again.
    layer.update(input(many));
    frames.frame();
    calls.length = 0;
    layer.styleLoaded();
    expect(zoomRanges()).toEqual([
      ["units-label", 15, 24],
      ["units-heading", 15, 24],
    ]);
  });

  it("writes nothing once disposed (the map was removed)", () => {
    const { map, calls } = fakeMap();
    const frames = manualFrames();
    const layer = new UnitLayer(map, "diff", 0, frames.schedule);
    layer.update(input(units));
    layer.dispose();
    frames.frame();
    expect(calls).toEqual([]);
  });

  it("naive mode (the benchmark's baseline) replaces the whole source on every update, with the console's declutter switch and no clustering", () => {
    const { map, calls } = fakeMap();
    const layer = new UnitLayer(map, "naive", 0, () => undefined);
    const zoomRanges = () => calls.filter((c) => c.op === "zoomRange").map((c) => c.arg);
    layer.update(input(units));
    layer.update(input(units));
    expect(calls.filter((c) => c.op === "setData")).toHaveLength(2);
    expect(zoomRanges()).toEqual([]);
    // A large fleet: labels and arrows from zoom 15, as the console; every update a full setData.
    const base = units[0] as UnitView;
    const many = Array.from({ length: CLUSTER_FROM }, (_, i) => moved({ ...base, id: `m-${i}` }, i * 1e-4));
    layer.update(input(many));
    layer.update(input(many));
    expect(calls.filter((c) => c.op === "setData")).toHaveLength(4);
    expect(calls.filter((c) => c.op === "updateData")).toEqual([]);
    expect(zoomRanges()).toEqual([
      ["units-label", 15, 24],
      ["units-heading", 15, 24],
    ]);
    expect(layer.isDecluttered).toBe(true);
    // Never clustered, whatever the fleet's size.
    expect(calls.filter((c) => c.op === "cluster")).toEqual([]);
    expect(layer.isClustered).toBe(false);
    // One unit fewer with a fix: back to every zoom.
    layer.update(input(many.map((u, i) => (i === 0 ? { ...u, fix: null } : u))));
    expect(zoomRanges().slice(2)).toEqual([
      ["units-label", 0, 24],
      ["units-heading", 0, 24],
    ]);
    expect(layer.isDecluttered).toBe(false);
  });
});
