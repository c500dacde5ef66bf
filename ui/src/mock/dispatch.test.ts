import { describe, expect, it } from "vitest";
import type { ClosestUnits, CoverageView, FieldRoute } from "../bindings";
import { distanceM } from "../domain";
import { MockBackend } from "./backend";
import { MOCK_ROAD_TOTAL_M, MOCK_SPEED_MPS, ROAD_FACTOR } from "./dispatch";

const NOW = Date.parse("2026-11-29T10:00:00Z");

describe("the fake backend's dispatch intelligence", () => {
  it("ranks available units by straight line × 1.4 at 40 km/h, routes for the first five", () => {
    const m = new MockBackend({ now: () => NOW });
    const fire = m.consoleState().incidents.find((i) => i.incident_type === "fire")!;
    const c = m.handle("closest_units", { args: { incident_id: fire.id } }) as ClosestUnits;
    expect(c.incident_id).toBe(fire.id);
    expect(c.unavailable).toBeNull();
    expect(c.closures_active).toBe(0);
    // 巡03 (u-03) is on the fire; the other five are available.
    const ids = c.candidates.map((x) => x.unit_id);
    expect(ids).not.toContain("u-03");
    expect(ids).toHaveLength(5);
    // 摩01 stands ~290 m from the fire, 巡02 over 1 km away.
    expect(ids[0]).toBe("u-04");
    expect(ids[4]).toBe("u-02");
    const etas = c.candidates.map((x) => x.eta_s as number);
    expect([...etas].sort((a, b) => a - b)).toEqual(etas);
    for (const x of c.candidates) {
      const u = m.units.find((y) => y.id === x.unit_id)!;
      const straight = distanceM(u.fix!.position, fire.location);
      expect(x.straight_m).toBe(Math.round(straight));
      expect(x.distance_m).toBe(Math.round(straight * ROAD_FACTOR));
      expect(x.eta_s).toBe(Math.round((straight * ROAD_FACTOR) / MOCK_SPEED_MPS));
      expect(x.route).toEqual([u.fix!.position, fire.location]);
      expect(x.problem).toBeNull();
    }
    // 40 km/h over 1.4× the straight line: 12.6 s per straight 100 m; 摩01 is ~290 m away.
    expect(c.candidates[0]!.eta_s).toBeGreaterThan(30);
    expect(c.candidates[0]!.eta_s).toBeLessThan(60);

    // A unit without a position is listed after, with the problem; a dispatched one leaves.
    m.units.find((u) => u.id === "u-06")!.fix = null;
    m.handle("assign_unit", { args: { incident_id: fire.id, unit_id: "u-04" } });
    const again = m.handle("closest_units", { args: { incident_id: fire.id } }) as ClosestUnits;
    expect(again.candidates.map((x) => [x.unit_id, x.problem])).toEqual([
      ["u-05", null],
      ["u-01", null],
      ["u-02", null],
      ["u-06", "no_position"],
    ]);
    expect(again.candidates[3]!.eta_s).toBeNull();
    expect(() => m.handle("closest_units", { args: { incident_id: "nope" } })).toThrow();
  });

  it("cannot rank for an incident off the roads: unavailable says why, units by straight line; a unit off the roads has no_road", () => {
    const m = new MockBackend({ now: () => NOW });
    // ~21 km north of Andorra la Vella: 11 km beyond the fake's roads.
    const far = m.handle("create_incident", {
      args: { incident_type: "other", priority: null, location: { lat: 42.7, lon: 1.5211 }, address: "Far away", description: "" },
    }) as { summary: { id: string; location: { lat: number; lon: number } } };
    const c = m.handle("closest_units", { args: { incident_id: far.summary.id } }) as ClosestUnits;
    expect(c.unavailable).toBe(
      "the incident is off the road network: no drivable road within 5000 m of 42.700000,1.521100 (nearest 11372 m); units are listed by straight-line distance, not by road",
    );
    expect(c.candidates).toHaveLength(5);
    for (const x of c.candidates) {
      expect([x.eta_s, x.distance_m, x.problem, x.route]).toEqual([null, null, null, null]);
      const u = m.units.find((y) => y.id === x.unit_id)!;
      expect(x.straight_m).toBe(Math.round(distanceM(u.fix!.position, far.summary.location)));
    }
    const straight = c.candidates.map((x) => x.straight_m as number);
    expect([...straight].sort((a, b) => a - b)).toEqual(straight);
    // 交01 at the north checkpoint is nearest.
    expect(c.candidates[0]!.unit_id).toBe("u-06");

    // A unit 25 km away cannot reach the fire by road: no_road with routing's message, after the ranked.
    const fire = m.consoleState().incidents.find((i) => i.incident_type === "fire")!;
    m.units.find((u) => u.id === "u-01")!.fix!.position = { lat: 42.73, lon: 1.5211 };
    m.units.find((u) => u.id === "u-02")!.fix = null;
    const r = m.handle("closest_units", { args: { incident_id: fire.id } }) as ClosestUnits;
    expect(r.unavailable).toBeNull();
    expect(r.candidates.slice(-2).map((x) => [x.unit_id, x.problem, x.problem_detail])).toEqual([
      ["u-01", "no_road", "no drivable road within 5000 m of 42.730000,1.521100 (nearest 14708 m)"],
      ["u-02", "no_position", "the unit has never reported a position"],
    ]);
  });

  it("covers 8 / 25 / 35 % by the five available units (37 % at 3 min with stations and posts), less once units are busy, 0 with none", () => {
    const m = new MockBackend({ now: () => NOW });
    const c = m.handle("coverage") as CoverageView;
    expect(c.share).toEqual([0.08, 0.25, 0.35]);
    expect(c.share_with_facilities).toEqual([0.11, 0.37, 0.56]);
    // Two stations and the post; the checkpoint is no source.
    expect(c.facilities).toBe(3);
    expect(c.units).toBe(5);
    expect(c.total_m).toBe(MOCK_ROAD_TOTAL_M);
    expect(c.reached_m[1]).toBe(Math.round(0.25 * MOCK_ROAD_TOTAL_M));
    expect(c.bands).toHaveLength(4);
    // Four spokes per source (3 facilities + 5 units) in each reached band; three hole lines.
    expect(c.bands.map((b) => b.length)).toEqual([32, 32, 32, 3]);
    m.handle("set_unit_status", { args: { unit_id: "u-01", to: "busy" } });
    const less = m.handle("coverage") as CoverageView;
    expect(less.units).toBe(4);
    expect(less.share[1]).toBeCloseTo(0.2, 6);
    expect(less.share_with_facilities[1]).toBeCloseTo(0.32, 6);
    for (const id of ["u-02", "u-04", "u-05", "u-06"]) m.handle("set_unit_status", { args: { unit_id: id, to: "busy" } });
    const none = m.handle("coverage") as CoverageView;
    expect(none.units).toBe(0);
    expect(none.share).toEqual([0, 0, 0]);
    expect(none.share_with_facilities).toEqual([0.03, 0.12, 0.21]);
  });

  it("routes the field unit to its assignment, and nothing for a dispatcher", () => {
    expect(new MockBackend({ now: () => NOW }).handle("field_route")).toBeNull();
    const m = new MockBackend({ now: () => NOW, fieldUnit: "u-02" });
    const r = m.handle("field_route") as FieldRoute;
    const u = m.units.find((x) => x.id === "u-02")!;
    const accident = m.consoleState().incidents.find((i) => i.incident_type === "traffic_accident")!;
    expect(r.incident_id).toBe(accident.id);
    expect(r.problem).toBeNull();
    expect(r.route?.line).toEqual([u.fix!.position, accident.location]);
    expect(r.route?.distance_m).toBe(Math.round(distanceM(u.fix!.position, accident.location) * ROAD_FACTOR));
    u.fix = null;
    expect(m.handle("field_route")).toMatchObject({ route: null, problem: "no_position" });
  });
});
