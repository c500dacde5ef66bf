import { describe, expect, it } from "vitest";
import type { ConsoleState, ImportReport, LatLon, RoadClosureView } from "../bindings";
import { MockBackend } from "./backend";

const NOW = Date.parse("2026-11-29T10:00:00Z");

describe("the fake's road closures, road line and facility import", () => {
  it("keeps closures in memory, active first, and lifts them", () => {
    let now = NOW;
    const m = new MockBackend({ now: () => now });
    const revs: number[] = [];
    m.onChange((r) => revs.push(r));
    const points: LatLon[] = [{ lat: 42.5, lon: 1.52 }, { lat: 42.51, lon: 1.53 }];
    const a = m.handle("set_road_closure", { args: { closure_id: null, shape: { type: "line", points }, reason: " 积水 ", ends_at: null } }) as RoadClosureView;
    expect(a).toMatchObject({ active: true, set_by: "dispatcher", set_at: "2026-11-29T10:00:00.000Z", closed_segments: 1 });
    expect(a.closure).toMatchObject({ reason: "积水", lifted: false, ends_at: null, shape: { type: "line", points } });
    now += 1000;
    const b = m.handle("set_road_closure", {
      args: { closure_id: null, shape: { type: "area", ring: [...points, { lat: 42.52, lon: 1.52 }] }, reason: "塌方", ends_at: "2026-11-29T10:30:00Z" },
    }) as RoadClosureView;
    expect(b.closure.closure_id).not.toBe(a.closure.closure_id);
    const list = () => m.handle("road_closures") as RoadClosureView[];
    expect(list().map((v) => v.closure.reason)).toEqual(["塌方", "积水"]);
    now += 1000;
    const lifted = m.handle("lift_road_closure", { args: { closure_id: a.closure.closure_id } }) as RoadClosureView;
    expect(lifted.active).toBe(false);
    expect(lifted.closure.lifted).toBe(true);
    // The area's end passes: it is listed but no longer active.
    now = Date.parse("2026-11-29T11:00:00Z");
    // Lifted after the area was set: newest change first.
    expect(list().map((v) => [v.closure.reason, v.active, v.closure.lifted])).toEqual([
      ["积水", false, true],
      ["塌方", false, false],
    ]);
    expect(m.closures.activeCount(now)).toBe(0);
    expect(revs).toEqual([2, 3, 4]);
    // Lifting is final: the lifted closure's id cannot be set again (as dispatch.rs).
    expect(() =>
      m.handle("set_road_closure", {
        args: { closure_id: a.closure.closure_id, shape: a.closure.shape, reason: "再次封闭", ends_at: null },
      }),
    ).toThrow(expect.objectContaining({ code: "illegal_transition" }));
    expect(revs).toEqual([2, 3, 4]);
  });

  it("refuses a closure without a reason, with too few points or unknown, with the IPC error shape", () => {
    const m = new MockBackend({ now: () => NOW });
    const line = { type: "line", points: [{ lat: 42.5, lon: 1.52 }, { lat: 42.51, lon: 1.53 }] };
    expect(() => m.handle("set_road_closure", { args: { closure_id: null, shape: line, reason: " ", ends_at: null } })).toThrow(
      expect.objectContaining({ code: "invalid_input", message: "reason: a closure needs a reason" }),
    );
    expect(() =>
      m.handle("set_road_closure", { args: { closure_id: null, shape: { type: "line", points: [{ lat: 42.5, lon: 1.52 }] }, reason: "x", ends_at: null } }),
    ).toThrow(expect.objectContaining({ code: "invalid_input" }));
    expect(() => m.handle("set_road_closure", { args: { closure_id: null, shape: line, reason: "x".repeat(501), ends_at: null } })).toThrow(
      expect.objectContaining({ message: "reason has 501 characters, at most 500" }),
    );
    expect(() => m.handle("lift_road_closure", { args: { closure_id: "nope" } })).toThrow(expect.objectContaining({ code: "not_found" }));
  });

  it("road_line inserts the midpoint of each leg", () => {
    const m = new MockBackend({ now: () => NOW });
    const line = m.handle("road_line", { args: { points: [{ lat: 42.5, lon: 1.5 }, { lat: 42.52, lon: 1.52 }, { lat: 42.52, lon: 1.54 }] } }) as LatLon[];
    expect(line.map((p) => [+p.lat.toFixed(6), +p.lon.toFixed(6)])).toEqual([
      [42.5, 1.5],
      [42.51, 1.51],
      [42.52, 1.52],
      [42.52, 1.53],
      [42.52, 1.54],
    ]);
    expect(() => m.handle("road_line", { args: { points: [{ lat: 42.5, lon: 1.5 }] } })).toThrow(expect.objectContaining({ code: "invalid_input" }));
    // Identical clicks snap to one place: refused as dispatch.rs refuses them.
    const same = { lat: 42.5176, lon: 1.5667 };
    expect(() => m.handle("road_line", { args: { points: [same, { ...same }, same] } })).toThrow({
      code: "invalid_input",
      message: "points: these points snap to the same place on the road; click further apart along it",
    });
  });

  it("warns about facilities outside the mock's area pack (bounds + 0.05°) without blocking the import", () => {
    const m = new MockBackend({ now: () => NOW });
    // Inside; on the edge within the margin (42.70 < 42.66 + 0.05); latitude and longitude swapped; 0,0.
    const text = "id,kind,name_zh,name_en,lat,lon\nin,post,甲,A,42.5,1.5\nedge,post,乙,B,42.70,1.5\nswapped,station,丙,C,1.5218,42.5063\nordos,checkpoint,丁,D,39.82,109.98\n";
    const r = m.handle("import_facilities", { args: { text, format: "csv", datum: "wgs84", commit: true } }) as ImportReport;
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([
      { at: "facility swapped", message: "1.521800,42.506300 is outside the area pack (42.420..42.660 N, 1.400..1.790 E): check the latitude/longitude order and the declared datum" },
      { at: "facility ordos", message: "39.820000,109.980000 is outside the area pack (42.420..42.660 N, 1.400..1.790 E): check the latitude/longitude order and the declared datum" },
    ]);
    expect(r.written).toBe(4);
    // 0,0 (an empty cell read as zero) is a problem, as in import.rs.
    const zero = m.handle("import_facilities", { args: { text: "id,kind,name_zh,name_en,lat,lon\nz,post,戊,E,0,0\n", format: "csv", datum: "wgs84", commit: false } }) as ImportReport;
    expect(zero.problems).toEqual([{ at: "line 2, column lat", message: "latitude and longitude are both 0 (the Gulf of Guinea): the position is missing" }]);
    expect(zero.warnings).toEqual([]);
  });

  it("imports a CSV: a problem at line 2 for lat 91 writes nothing; a good file adds its facilities", () => {
    const m = new MockBackend({ now: () => NOW });
    const bad = "id,kind,name_zh,name_en,lat,lon\npost-x,post,新警务站,New Post,91,1.52\nchk-y,checkpoint,南检查站,South Checkpoint,42.49,1.51\n";
    const r = m.handle("import_facilities", { args: { text: bad, format: "csv", datum: "wgs84", commit: true } }) as ImportReport;
    expect(r.problems).toEqual([{ at: "line 2, column lat", message: "latitude 91 is outside −90..90" }]);
    expect(r.written).toBe(0);
    expect(r.facilities.map((f) => f.id)).toEqual(["chk-y"]);
    expect((m.handle("console_state") as ConsoleState).facilities).toHaveLength(4);

    const good = "\uFEFFid,kind,name_zh,name_en,lat,lon\r\npost-x,post,新警务站,New Post,42.512345,1.523456\r\nstn-centre,station,城区派出所,Centre,42.5066,1.5206\r\n";
    const preview = m.handle("import_facilities", { args: { text: good, format: "csv", datum: "wgs84", commit: false } }) as ImportReport;
    expect(preview).toMatchObject({ problems: [], written: 0 });
    expect(preview.facilities[0]).toEqual({ id: "post-x", kind: "post", name_zh: "新警务站", name_en: "New Post", position: { lat: 42.512345, lon: 1.523456 } });
    const done = m.handle("import_facilities", { args: { text: good, format: "csv", datum: "wgs84", commit: true } }) as ImportReport;
    expect(done.written).toBe(2);
    const facilities = (m.handle("console_state") as ConsoleState).facilities;
    // One new, one replaced by id.
    expect(facilities).toHaveLength(5);
    expect(facilities.find((f) => f.id === "stn-centre")?.position).toEqual({ lat: 42.5066, lon: 1.5206 });

    // The same file again: nothing new or changed, nothing written (as import.rs), no revision.
    const revision = (m.handle("console_state") as ConsoleState).revision;
    const again = m.handle("import_facilities", { args: { text: good, format: "csv", datum: "wgs84", commit: true } }) as ImportReport;
    expect(again).toMatchObject({ problems: [], written: 0 });
    expect(again.facilities).toHaveLength(2);
    expect((m.handle("console_state") as ConsoleState).revision).toBe(revision);
    // One name changed: only that facility counts.
    const renamed = good.replace("New Post", "Renamed Post");
    expect((m.handle("import_facilities", { args: { text: renamed, format: "csv", datum: "wgs84", commit: true } }) as ImportReport).written).toBe(1);
  });

  it("imports GeoJSON points and names the feature of a problem", () => {
    const m = new MockBackend({ now: () => NOW });
    const fc = {
      type: "FeatureCollection",
      features: [
        { type: "Feature", geometry: { type: "Point", coordinates: [1.53, 42.51] }, properties: { id: "p1", kind: "post", name_zh: "甲", name_en: "A" } },
        { type: "Feature", geometry: { type: "Point", coordinates: [1.53, 42.51] }, properties: { id: "p2", kind: "tower", name_zh: "乙", name_en: "B" } },
      ],
    };
    const r = m.handle("import_facilities", { args: { text: JSON.stringify(fc), format: "geojson", datum: "wgs84", commit: false } }) as ImportReport;
    expect(r.facilities.map((f) => [f.id, f.position.lat, f.position.lon])).toEqual([["p1", 42.51, 1.53]]);
    expect(r.problems).toEqual([{ at: "feature 2, property kind", message: 'kind "tower" is not station, post or checkpoint' }]);
    const notJson = m.handle("import_facilities", { args: { text: "id,kind", format: "geojson", datum: "wgs84", commit: false } }) as ImportReport;
    expect(notJson.problems[0]?.at).toBe("file");
  });
});
