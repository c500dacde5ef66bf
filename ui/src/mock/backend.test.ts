import { describe, expect, it } from "vitest";
import type { DeviceView, ExportedTrack, FieldView, IncidentDetail, Track, UnitView } from "../bindings";
import { HISTORY_S, HISTORY_STEP_S, MockBackend } from "./backend";

const NOW = Date.parse("2026-11-29T10:00:00Z");

describe("the fake backend used by dev and e2e", () => {
  it("refuses illegal status changes like the domain", () => {
    const m = new MockBackend();
    expect(() => m.handle("set_unit_status", { args: { unit_id: "u-01", to: "on_scene" } })).toThrow();
    try {
      m.handle("set_unit_status", { args: { unit_id: "u-01", to: "dispatched" } });
    } catch (e) {
      expect(e).toMatchObject({ code: "illegal_transition" });
    }
    const u = m.handle("set_unit_status", { args: { unit_id: "u-01", to: "busy" } }) as UnitView;
    expect(u.status).toBe("busy");
  });

  it("creates, assigns, and closes with a timeline", () => {
    const m = new MockBackend();
    const revs: number[] = [];
    m.onChange((r) => revs.push(r));
    const d = m.handle("create_incident", {
      args: { incident_type: "medical", priority: null, location: { lat: 42.507, lon: 1.522 }, address: "", description: "fall" },
    }) as IncidentDetail;
    expect(d.summary.priority).toBe("P1");
    expect(d.summary.address).toBe("Carrer de la Unió, Andorra la Vella");
    const a = m.handle("assign_unit", { args: { incident_id: d.summary.id, unit_id: "u-02" } }) as IncidentDetail;
    expect(a.summary.status).toBe("dispatched");
    const c = m.handle("close_incident", { args: { incident_id: d.summary.id, disposition: "transported", summary: "" } }) as IncidentDetail;
    expect(c.summary.status).toBe("closed");
    expect(c.timeline.map((e) => e.event.kind)).toEqual(["created", "unit_assigned", "unit_released", "closed"]);
    expect(m.consoleState().units.find((u) => u.id === "u-02")?.status).toBe("available");
    expect(revs).toEqual([2, 3, 4]);
  });

  it("lists unbound devices newest first, then bound ones, and binds and unbinds", () => {
    const m = new MockBackend({ now: () => NOW });
    const list = () => m.handle("list_devices") as DeviceView[];
    expect(list().map((d) => [d.device_id, d.unit_id])).toEqual([
      ["862104050123456", null],
      ["ANDROID-5f3c9a1e2b7d4c60", null],
      ["S-LAPTOP-07", null],
      ["861234567890123", "u-01"],
      ["ANDROID-a1b2c3d4e5f60718", "u-02"],
    ]);
    const bound = m.handle("bind_device", { args: { device_id: "S-LAPTOP-07", unit_id: "u-05" } }) as DeviceView;
    expect(bound).toMatchObject({ unit_id: "u-05", callsign: "步01", reports: 3, battery_pct: 15 });
    expect(list().filter((d) => d.unit_id === null)).toHaveLength(2);
    m.handle("bind_device", { args: { device_id: "861234567890123", unit_id: null } });
    expect(list()[0]?.device_id).toBe("862104050123456");
    expect(list().find((d) => d.device_id === "861234567890123")?.callsign).toBeNull();
    // An id never heard of can be bound (pre-registration) but not unbound.
    expect(() => m.handle("bind_device", { args: { device_id: "nope", unit_id: null } })).toThrow(/nothing to unbind/);
    try {
      m.handle("bind_device", { args: { device_id: "S-LAPTOP-07", unit_id: "u-99" } });
    } catch (e) {
      expect(e).toMatchObject({ code: "not_found", message: "unit u-99 does not exist" });
    }
  });

  it("answers a unit's track in a window, oldest first, each fix once, and exports it", () => {
    const m = new MockBackend({ now: () => NOW });
    const all = m.handle("unit_track", { args: { unit_id: "u-01", from: null, to: null } }) as Track;
    expect(all.callsign).toBe("巡01");
    expect(all.points).toHaveLength(HISTORY_S / HISTORY_STEP_S + 1);
    expect(all.truncated).toBe(false);
    const times = all.points.map((p) => Date.parse(p.fix_time));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(new Set(times).size).toBe(times.length);
    // The last point is the unit's latest position (5 s old).
    expect(all.points.at(-1)?.position).toEqual({ lat: 42.5071, lon: 1.5228 });
    expect(all.points.at(-1)?.fix_time).toBe("2026-11-29T09:59:55.000Z");
    // The last 15 minutes, bounds inclusive: fixes at 09:45:05, 09:45:15, … 09:59:55.
    const q = { unit_id: "u-01", from: "2026-11-29T09:45:05Z", to: "2026-11-29T10:00:00Z" };
    const win = m.handle("unit_track", { args: q }) as Track;
    expect(win.points).toHaveLength(90);
    expect(win.points[0]?.fix_time).toBe("2026-11-29T09:45:05.000Z");
    const gpx = m.handle("export_track", { args: { track: q, format: "gpx" } }) as ExportedTrack;
    expect(gpx).toEqual({ path: "/home/duty/.local/share/outpost/exports/巡01-20261129T094505Z-20261129T095955Z.gpx", points: 90 });
    expect(() => m.handle("export_track", { args: { track: { ...q, from: "2020-01-01T00:00:00Z", to: "2020-01-02T00:00:00Z" }, format: "kml" } })).toThrow();
    expect(() => m.handle("unit_track", { args: { ...q, from: q.to, to: q.from } })).toThrow();
  });

  it("is a field unit only when asked: dispatched to the accident, with a receiver that moves it en route", () => {
    expect(new MockBackend({ now: () => NOW }).handle("field_view")).toBeNull();
    let now = NOW;
    const m = new MockBackend({ now: () => now, fieldUnit: "u-02" });
    const v = m.handle("field_view") as FieldView;
    expect(v.unit.callsign).toBe("巡02");
    expect(v.assignment?.summary.address).toBe("Avinguda Meritxell, Andorra la Vella");
    expect(v.gps).toMatchObject({ source: "/dev/ttyUSB0", connected: true, fixes: 612 });
    m.handle("set_unit_status", { args: { unit_id: "u-02", to: "en_route" } });
    const before = m.history.get("u-02")!.length;
    now += 1000;
    m.gpsTick();
    const after = m.handle("field_view") as FieldView;
    expect(after.gps?.fixes).toBe(613);
    expect(after.unit.fix?.fix_time).toBe("2026-11-29T10:00:01.000Z");
    expect(after.unit.fix?.speed_mps).toBe(10);
    expect(m.history.get("u-02")).toHaveLength(before + 1);
  });

  it("acknowledges a field unit's assignment once, with a timeline note; refuses without one", () => {
    expect(() => new MockBackend({ now: () => NOW }).handle("acknowledge_assignment")).toThrow();
    const m = new MockBackend({ now: () => NOW, fieldUnit: "u-02" });
    const v = m.handle("acknowledge_assignment") as FieldView;
    expect(v.acknowledged_at).toBe("2026-11-29T10:00:00.000Z");
    expect(v.assignment?.timeline.at(-1)).toMatchObject({ user: "巡02", event: { kind: "note", text: "巡02 acknowledged" } });
    const again = m.handle("acknowledge_assignment") as FieldView;
    expect(again.assignment?.timeline.filter((e) => e.event.kind === "note" && e.event.text === "巡02 acknowledged")).toHaveLength(1);
    // Cleared: no assignment, nothing to acknowledge.
    m.handle("set_unit_status", { args: { unit_id: "u-02", to: "available" } });
    expect((m.handle("field_view") as FieldView).acknowledged_at).toBeNull();
    try {
      m.handle("acknowledge_assignment");
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: "not_found", message: "巡02 has no active assignment to acknowledge" });
    }
  });
});
