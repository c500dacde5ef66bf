// The field laptop's rules for drawing (outpost --unit CALLSIGN): which of the four big buttons
// (确认 acknowledge / 出发 en route / 到达 on scene / 完成 clear) the domain allows now. The
// backend stays the authority (it refuses an illegal transition, or an acknowledgement without
// an assignment).

import type { FieldView, UnitStatus } from "./bindings";
import { allowedNext, isCommitted } from "./domain";

/** The big buttons, in the order a call runs. */
export type FieldAction = "ack" | "en_route" | "on_scene" | "clear";
export const FIELD_ACTIONS: FieldAction[] = ["ack", "en_route", "on_scene", "clear"];

/** The status each action sets (acknowledging sets none). */
export const ACTION_STATUS: Record<Exclude<FieldAction, "ack">, UnitStatus> = { en_route: "en_route", on_scene: "on_scene", clear: "available" };

/** Which buttons may be pressed now: the status table's next statuses, with an assignment. */
export function enabledActions(view: FieldView): Record<FieldAction, boolean> {
  const s = view.unit.status;
  const next = allowedNext(s);
  const assigned = view.assignment !== null && view.unit.incident_id !== null;
  return {
    ack: assigned && view.acknowledged_at === null,
    en_route: assigned && next.includes("en_route"),
    on_scene: assigned && next.includes("on_scene"),
    clear: assigned && isCommitted(s) && next.includes("available"),
  };
}

/** The button showing the unit's current status (drawn pressed). */
export function currentAction(view: FieldView): FieldAction | null {
  const s = view.unit.status;
  if (s === "en_route") return "en_route";
  if (s === "on_scene") return "on_scene";
  return null;
}
