// @vitest-environment jsdom
import { describe, expect, it, vi } from "vitest";
import type { ClosestUnits, CoverageView, UnitEta } from "./bindings";
import {
  closestRows,
  coveragePercents,
  fieldRouteText,
  firstDispatchable,
  formatEta,
  formatKm,
  isDispatchKey,
  closureReasons,
  formatDistance,
  nearestRoadM,
  problemText,
  problemTitle,
  Throttle,
  unavailableText,
} from "./dispatch";
import { closestRouteLines, fieldRouteLines, routeLineFeatures } from "./map/routes";
import { coverageFeatures } from "./map/coverage";

function unit(id: string, eta: number | null, problem: UnitEta["problem"] = null, detail: string | null = null): UnitEta {
  return {
    unit_id: id,
    callsign: `巡${id}`,
    kind: "patrol_car",
    fix: problem === "no_position" ? null : { position: { lat: 42.5, lon: 1.52 }, fix_time: "2026-11-29T10:00:00Z", heading_deg: null, speed_mps: 0, accuracy_m: 5 },
    eta_s: eta,
    distance_m: eta === null ? null : eta * 10,
    straight_m: eta === null ? null : eta * 7,
    problem,
    problem_detail: detail,
    route: eta === null ? null : [{ lat: 42.5 + eta / 1e5, lon: 1.52 }, { lat: 42.51, lon: 1.53 }],
  };
}

function ranking(candidates: UnitEta[], closures = 0): ClosestUnits {
  return { incident_id: "inc-1", candidates, closures_active: closures, unavailable: null, took_ms: 0.4 };
}

describe("ETA text", () => {
  it("is m:ss in English and minutes and seconds in Chinese", () => {
    expect(formatEta(200, "en")).toBe("3:20");
    expect(formatEta(200, "zh")).toBe("3 分 20 秒");
    expect(formatEta(65, "en")).toBe("1:05");
    expect(formatEta(65, "zh")).toBe("1 分 5 秒");
    expect(formatEta(45, "en")).toBe("0:45");
    expect(formatEta(45, "zh")).toBe("45 秒");
    expect(formatEta(3725, "en")).toBe("1:02:05");
    expect(formatEta(3725, "zh")).toBe("1 小时 2 分 5 秒");
    // Rounded to whole seconds; 59.6 s is a minute.
    expect(formatEta(59.6, "en")).toBe("1:00");
    expect(formatEta(-1, "en")).toBe("—");
    expect(formatEta(Number.NaN, "zh")).toBe("—");
  });

  it("shows road distance in km with one decimal", () => {
    expect(formatKm(2449)).toBe("2.4");
    expect(formatKm(0)).toBe("0.0");
    expect(formatKm(12_050)).toBe("12.1");
  });

  it("translates problems and shows only the data in the backend's English details", () => {
    expect(problemText("zh", "no_position", "the unit has never reported a position")).toBe("无位置");
    // dispatch.rs / routing.rs details: only the data is shown, translated around it.
    const noRoad = "no drivable road within 5000 m of 42.700000,1.521100 (nearest 11372 m)";
    expect(problemText("zh", "no_road", noRoad)).toBe("离道路太远：最近道路 11.4 km");
    expect(problemText("en", "no_road", "no drivable road within 5000 m of 42.5,1.5 (nearest 412 m)")).toBe("Too far from a road: nearest road 412 m");
    expect(problemText("en", "no_road", "1,234 m from the nearest drivable road")).toBe("Too far from a road: nearest road 1.2 km");
    const cut = "road closures cut every route to the incident: 积水 0.8 m; bridge collapsed";
    expect(closureReasons(cut)).toEqual(["积水 0.8 m", "bridge collapsed"]);
    expect(problemText("zh", "closed_off", cut)).toBe("道路封闭阻断：积水 0.8 m；bridge collapsed");
    expect(problemText("en", "closed_off", cut)).toBe("Cut off by road closures: 积水 0.8 m; bridge collapsed");
    expect(problemText("zh", "closed_off", "road closures cut every route to the incident")).toBe("道路封闭阻断");
    expect(problemText("en", "closed_off", "  ")).toBe("Cut off by road closures");
    expect(problemTitle("  ")).toBeUndefined();
    expect(problemTitle(cut)).toBe(cut);
    expect(nearestRoadM("the area pack has no drivable road network")).toBeNull();
    expect(formatDistance(850.4)).toBe("850 m");
    expect(formatDistance(1234)).toBe("1.2 km");
    expect(problemText("en", "no_road")).toBe("Too far from a road");
  });
});

describe("the ranking as shown", () => {
  it("ranks the fastest five, counts the rest and lists problems after", () => {
    const c = ranking([
      unit("a", 300),
      unit("b", 120),
      unit("c", 410),
      unit("d", 90),
      unit("e", 120),
      unit("f", 500),
      unit("g", 700),
      unit("h", null, "no_position"),
      unit("i", null, "closed_off", "road closures cut every route to the incident: 积水"),
    ]);
    const rows = closestRows(c);
    // Fastest first; the tie (b, e at 120 s) keeps the backend's order.
    expect(rows.ranked.map((r) => [r.rank, r.unit.unit_id])).toEqual([
      [1, "d"],
      [2, "b"],
      [3, "e"],
      [4, "a"],
      [5, "c"],
    ]);
    expect(rows.more).toBe(2);
    expect(rows.problems.map((u) => u.unit_id)).toEqual(["h", "i"]);
    expect(closestRows(null)).toEqual({ by: "road", ranked: [], more: 0, problems: [] });
  });

  it("D takes the first ranked unit not dispatched yet", () => {
    const c = ranking([unit("a", 300), unit("b", 120), unit("h", null, "no_position")]);
    expect(firstDispatchable(c)?.unit_id).toBe("b");
    expect(firstDispatchable(c, new Set(["b"]))?.unit_id).toBe("a");
    expect(firstDispatchable(c, new Set(["a", "b"]))).toBeNull();
    expect(firstDispatchable(ranking([unit("h", null, "no_position")]))).toBeNull();
  });

  it("without routing lists units by straight line and D takes the nearest", () => {
    const straight = (id: string, m: number | null): UnitEta => ({ ...unit(id, null, m === null ? "no_position" : null), straight_m: m });
    const why =
      "the incident is off the road network: no drivable road within 5000 m of 42.700000,1.521100 (nearest 11372 m); units are listed by straight-line distance, not by road";
    const c: ClosestUnits = { ...ranking([straight("b", 900), straight("a", 2400), straight("c", 400), straight("h", null)]), unavailable: why };
    const rows = closestRows(c);
    expect(rows.by).toBe("straight");
    expect(rows.ranked.map((r) => [r.rank, r.unit.unit_id])).toEqual([
      [1, "c"],
      [2, "b"],
      [3, "a"],
    ]);
    expect(rows.problems.map((u) => u.unit_id)).toEqual(["h"]);
    expect(firstDispatchable(c)?.unit_id).toBe("c");
    expect(firstDispatchable(c, new Set(["c"]))?.unit_id).toBe("b");
    expect(closestRows(ranking([unit("a", 300)])).by).toBe("road");
    expect(unavailableText("zh", why)).toBe("无法按道路排序：事件地点不在道路网上（最近道路 11.4 km）");
    expect(unavailableText("en", "no area pack is open, so there is no road network to route on; units are listed by straight-line distance, not by road")).toBe(
      "No road ranking: no area pack is open",
    );
    expect(unavailableText("zh", "the area pack has no drivable road network; road ETAs and coverage need one")).toBe("无法按道路排序：区域数据包没有可行驶的道路");
    expect(unavailableText("en", "cannot read the pack's road network: disk error")).toBe("No road ranking: the road network cannot be read");
  });

  it("draws the top five routes, the first on top with its ETA label", () => {
    const c = ranking([unit("a", 300), unit("b", 120), unit("c", 130), unit("d", 140), unit("e", 150), unit("f", 160), unit("h", null, "no_position")]);
    const lines = closestRouteLines(c);
    expect(lines.map((l) => [l.rank, l.unitId, l.label])).toEqual([
      [1, "b", "巡b 2:00"],
      [2, "c", "巡c 2:10"],
      [3, "d", "巡d 2:20"],
      [4, "e", "巡e 2:30"],
      [5, "f", "巡f 2:40"],
    ]);
    // The label sits at the unit's end of the line.
    expect(lines[0]?.labelAt).toEqual(c.candidates[1]?.route?.[0]);
    const fc = routeLineFeatures(lines);
    expect(fc.features.map((f) => f.properties.rank)).toEqual([5, 4, 3, 2, 1]);
    expect(fc.features[4]?.properties.first).toBe(true);
    expect(fc.features[4]?.geometry.coordinates[0]).toEqual([1.52, 42.5 + 120 / 1e5]);
  });
});

describe("the D key", () => {
  it("fires for a plain d or D outside text fields only", () => {
    const input = document.createElement("input");
    const area = document.createElement("textarea");
    const div = document.createElement("div");
    expect(isDispatchKey({ key: "d", target: div })).toBe(true);
    expect(isDispatchKey({ key: "D", target: document.body })).toBe(true);
    expect(isDispatchKey({ key: "d", target: input })).toBe(false);
    expect(isDispatchKey({ key: "d", target: area })).toBe(false);
    expect(isDispatchKey({ key: "d", target: div, ctrlKey: true })).toBe(false);
    expect(isDispatchKey({ key: "d", target: div, repeat: true })).toBe(false);
    expect(isDispatchKey({ key: "a", target: div })).toBe(false);
  });
});

describe("coverage and the field route in words", () => {
  const cov: CoverageView = {
    share: [0.12, 0.405, 0.634],
    reached_m: [1, 2, 3],
    share_with_facilities: [0.2, 0.5, 0.7],
    total_m: 10,
    bands: [[[[1.5, 42.5], [1.51, 42.5]]], [], [[[1.5, 42.5], [1.52, 42.5]], [[1.5, 42.5]]], [[[1.6, 42.6], [1.61, 42.6]]]],
    facilities: 4,
    units: 5,
    closures_active: 0,
    took_ms: 3,
    unavailable: null,
  };

  it("rounds shares to percentages and draws each non-empty band once", () => {
    expect(coveragePercents(cov)).toEqual([12, 41, 63]);
    expect(coveragePercents(cov, "with_facilities")).toEqual([20, 50, 70]);
    expect(coveragePercents({ ...cov, unavailable: "no pack" })).toBeNull();
    expect(coveragePercents(null)).toBeNull();
    const fc = coverageFeatures(cov);
    expect(fc.features.map((f) => f.properties.band)).toEqual([0, 2, 3]);
    // A one-point line is dropped.
    expect(fc.features[1]?.geometry.coordinates).toHaveLength(1);
  });

  it("says the ETA and distance, or why there is no route", () => {
    const ok = { incident_id: "i", route: { eta_s: 200, distance_m: 2449, line: [{ lat: 1, lon: 2 }, { lat: 1.1, lon: 2 }] }, problem: null, problem_detail: null };
    expect(fieldRouteText("en", ok)).toBe("ETA 3:20 · 2.4 km by road");
    expect(fieldRouteText("zh", ok)).toBe("预计 3 分 20 秒 到达 · 道路 2.4 公里");
    expect(fieldRouteText("zh", { incident_id: "i", route: null, problem: "closed_off", problem_detail: "road closures cut every route to the incident: 塌方" })).toBe("无路线：道路封闭阻断：塌方");
    expect(fieldRouteText("en", null)).toBeNull();
    expect(fieldRouteLines(ok, "巡02").map((l) => l.label)).toEqual(["巡02 3:20"]);
    expect(fieldRouteLines({ ...ok, route: null }, "巡02")).toEqual([]);
  });
});

describe("Throttle", () => {
  it("runs at most once per gap, collapsing requests in between, never two at once", async () => {
    let now = 0;
    const timers: { at: number; f: () => void }[] = [];
    let release: (() => void) | null = null;
    const load = vi.fn(() => new Promise<void>((r) => (release = r)));
    const th = new Throttle(load, 500, () => now, (f, ms) => {
      timers.push({ at: now + ms, f });
      return 0 as unknown as ReturnType<typeof setTimeout>;
    }, () => {});
    th.request();
    expect(load).toHaveBeenCalledTimes(1);
    // While running: requests wait.
    th.request();
    th.request();
    expect(load).toHaveBeenCalledTimes(1);
    now = 100;
    (release as unknown as () => void)();
    await Promise.resolve();
    await Promise.resolve();
    await Promise.resolve();
    // Finished at 100 ms: the next run waits until 500 ms.
    expect(load).toHaveBeenCalledTimes(1);
    expect(timers.map((t) => t.at)).toEqual([500]);
    now = 500;
    timers.shift()?.f();
    expect(load).toHaveBeenCalledTimes(2);
  });
});
