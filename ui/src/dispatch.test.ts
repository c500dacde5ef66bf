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
  problemText,
  Throttle,
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

  it("translates problems and keeps the backend's details", () => {
    expect(problemText("zh", "no_position")).toBe("无位置");
    expect(problemText("zh", "no_road", "412 m from the nearest road")).toBe("离道路太远 (412 m from the nearest road)");
    expect(problemText("zh", "closed_off", "closure: 积水 0.8 m")).toBe("道路封闭阻断 (closure: 积水 0.8 m)");
    expect(problemText("en", "closed_off", "  ")).toBe("Cut off by road closures");
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
      unit("i", null, "closed_off", "closure: 积水"),
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
    expect(closestRows(null)).toEqual({ ranked: [], more: 0, problems: [] });
  });

  it("D takes the first ranked unit not dispatched yet", () => {
    const c = ranking([unit("a", 300), unit("b", 120), unit("h", null, "no_position")]);
    expect(firstDispatchable(c)?.unit_id).toBe("b");
    expect(firstDispatchable(c, new Set(["b"]))?.unit_id).toBe("a");
    expect(firstDispatchable(c, new Set(["a", "b"]))).toBeNull();
    expect(firstDispatchable(ranking([unit("h", null, "no_position")]))).toBeNull();
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
    expect(fieldRouteText("zh", { incident_id: "i", route: null, problem: "closed_off", problem_detail: "closure: 塌方" })).toBe("无路线：道路封闭阻断 (closure: 塌方)");
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
