import { describe, expect, it } from "vitest";
import type { IncidentDetail, UnitView } from "../bindings";
import { MockBackend } from "./backend";

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
});
