import { describe, expect, it } from "vitest";
import type { FieldView } from "./bindings";
import { currentAction, enabledActions } from "./field";
import { MockBackend } from "./mock/backend";

const NOW = Date.parse("2026-11-29T10:00:00Z");

function view(): FieldView {
  const m = new MockBackend({ now: () => NOW, fieldUnit: "u-02" });
  return m.fieldView()!;
}

describe("field laptop buttons", () => {
  it("offers acknowledge, en route, on scene and clear to a dispatched unit", () => {
    const v = view();
    expect(v.unit.status).toBe("dispatched");
    expect(enabledActions(v)).toEqual({ ack: true, en_route: true, on_scene: true, clear: true });
    expect(currentAction(v)).toBeNull();
  });

  it("follows the status table: en route may go on scene or clear; on scene only clear", () => {
    const v = view();
    const enRoute = { ...v, unit: { ...v.unit, status: "en_route" as const } };
    expect(enabledActions(enRoute)).toMatchObject({ en_route: false, on_scene: true, clear: true });
    expect(currentAction(enRoute)).toBe("en_route");
    const onScene = { ...v, unit: { ...v.unit, status: "on_scene" as const } };
    expect(enabledActions(onScene)).toMatchObject({ en_route: false, on_scene: false, clear: true });
  });

  it("offers nothing without an assignment", () => {
    const v = view();
    const free = { ...v, assignment: null, unit: { ...v.unit, status: "available" as const, incident_id: null, incident_number: null } };
    expect(enabledActions(free)).toEqual({ ack: false, en_route: false, on_scene: false, clear: false });
  });

  it("offers acknowledge only until the assignment is acknowledged", () => {
    const v = view();
    expect(v.acknowledged_at).toBeNull();
    expect(enabledActions({ ...v, acknowledged_at: "2026-11-29T10:00:00Z" })).toEqual({ ack: false, en_route: true, on_scene: true, clear: true });
  });
});
