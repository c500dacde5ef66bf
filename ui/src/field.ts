// The field laptop's rules for drawing (outpost --unit CALLSIGN): which of the four big buttons
// (确认 acknowledge / 出发 en route / 到达 on scene / 完成 clear) the domain allows now, and
// whether this unit already acknowledged its assignment. The backend stays the authority.

import { addNote, type FieldView, type IncidentDetail, type UnitStatus } from "./bindings";
import { allowedNext, isCommitted } from "./domain";
import { DICTIONARIES, type Lang, t } from "./i18n";

/** The big buttons, in the order a call runs. */
export type FieldAction = "ack" | "en_route" | "on_scene" | "clear";
export const FIELD_ACTIONS: FieldAction[] = ["ack", "en_route", "on_scene", "clear"];

/** The status each action sets (acknowledging sets none). */
export const ACTION_STATUS: Record<Exclude<FieldAction, "ack">, UnitStatus> = { en_route: "en_route", on_scene: "on_scene", clear: "available" };

/**
 * The acknowledgement note's text in every language, so one written by a console in the
 * other language is recognised too.
 */
export function ackTexts(callsign: string): string[] {
  return (Object.keys(DICTIONARIES) as Lang[]).map((l) => t(l, "field.ackNote", { callsign }));
}

/**
 * When this unit acknowledged the assignment (UTC), or null. Until the backend has its own
 * command for it, an acknowledgement is the timeline note "<callsign> acknowledged" written
 * after the unit's latest assignment to this incident.
 */
export function acknowledgedAt(view: FieldView): string | null {
  const a = view.assignment;
  if (!a) return null;
  const texts = new Set(ackTexts(view.unit.callsign));
  const assigned = latestAssignment(a, view.unit.id)?.assigned_at;
  const since = assigned ? Date.parse(assigned) : -Infinity;
  const note = [...a.timeline].reverse().find((e) => e.event.kind === "note" && texts.has(e.event.text) && Date.parse(e.at) >= since);
  return note?.at ?? null;
}

function latestAssignment(d: IncidentDetail, unitId: string) {
  return d.assignments.filter((x) => x.unit_id === unitId && x.released_at === null).at(-1);
}

/** Which buttons may be pressed now: the status table's next statuses, with an assignment. */
export function enabledActions(view: FieldView): Record<FieldAction, boolean> {
  const s = view.unit.status;
  const next = allowedNext(s);
  const assigned = view.assignment !== null && view.unit.incident_id !== null;
  return {
    ack: assigned && acknowledgedAt(view) === null,
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

/** Acknowledges the assignment: the timeline note, in the console's language. */
export function acknowledge(view: FieldView, lang: Lang): Promise<IncidentDetail> {
  const incident = view.assignment?.summary.id;
  if (!incident) return Promise.reject({ code: "invalid_input", message: `${view.unit.callsign} has no assignment to acknowledge` });
  return addNote({ incident_id: incident, text: t(lang, "field.ackNote", { callsign: view.unit.callsign }) });
}
