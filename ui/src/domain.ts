// The domain rules the UI needs to draw buttons and sort rows. The tables themselves
// (menu orders, the status transition table, default priorities) are generated from
// crates/outpost-domain into bindings.ts, so they cannot drift; the backend stays the
// authority and refuses anything these might let through.

import {
  DEFAULT_PRIORITY,
  DISPOSITIONS,
  INCIDENT_TYPES,
  type IncidentStatus,
  type IncidentSummary,
  type IncidentType,
  type LatLon,
  PRIORITIES,
  type Priority,
  UNIT_STATUS_NEXT,
  UNIT_STATUSES,
  type UnitStatus,
  type UnitView,
} from "./bindings";

export { DISPOSITIONS, INCIDENT_TYPES, PRIORITIES, UNIT_STATUSES };
export const INCIDENT_STATUSES: IncidentStatus[] = ["pending", "dispatched", "on_scene", "closed"];

/** `IncidentType::default_priority` in outpost-domain. */
export function defaultPriority(t: IncidentType): Priority {
  return DEFAULT_PRIORITY[t];
}

/** `UnitStatus::allowed_next` in outpost-domain (dispatch is an assignment, not a button). */
export function allowedNext(s: UnitStatus): UnitStatus[] {
  return UNIT_STATUS_NEXT[s];
}

/** True for statuses that belong to an active assignment. */
export function isCommitted(s: UnitStatus): boolean {
  return s === "dispatched" || s === "en_route" || s === "on_scene";
}

const PRIORITY_RANK: Record<Priority, number> = { P1: 0, P2: 1, P3: 2, P4: 3 };

/**
 * Queue order: open before closed, then priority (P1 first), then age (oldest first), then
 * number. The backend sends this order too; the UI sorts again so a partial refresh can't
 * scramble it.
 */
export function sortQueue(incidents: IncidentSummary[]): IncidentSummary[] {
  return [...incidents].sort((a, b) => {
    const ac = a.status === "closed" ? 1 : 0;
    const bc = b.status === "closed" ? 1 : 0;
    if (ac !== bc) return ac - bc;
    const p = PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority];
    if (p !== 0) return p;
    const t = Date.parse(a.created_at) - Date.parse(b.created_at);
    if (t !== 0) return t;
    return a.number.localeCompare(b.number);
  });
}

/** Number of incidents in each status. */
export function countByStatus(incidents: IncidentSummary[]): Record<IncidentStatus, number> {
  const c: Record<IncidentStatus, number> = { pending: 0, dispatched: 0, on_scene: 0, closed: 0 };
  for (const i of incidents) c[i.status] += 1;
  return c;
}

/** Seconds since the unit's latest fix at `nowMs`, or null without a fix. Never negative. */
export function fixAgeS(unit: UnitView, nowMs: number): number | null {
  if (!unit.fix) return null;
  const t = Date.parse(unit.fix.fix_time);
  if (Number.isNaN(t)) return null;
  return Math.max(0, (nowMs - t) / 1000);
}

/** A unit is stale when it has no fix or its fix is older than `staleAfterS` seconds. */
export function isStale(unit: UnitView, nowMs: number, staleAfterS: number): boolean {
  const age = fixAgeS(unit, nowMs);
  return age === null || age > staleAfterS;
}

/** Great-circle distance in metres (haversine, spherical Earth radius 6 371 008.8 m). */
export function distanceM(a: LatLon, b: LatLon): number {
  const r = 6371008.8;
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h =
    Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * r * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Units that may be assigned (available), nearest to `at` first; units without a fix last. */
export function assignableUnits(units: UnitView[], at: LatLon): UnitView[] {
  return units
    .filter((u) => u.status === "available" && u.incident_id === null)
    .sort((a, b) => {
      const da = a.fix ? distanceM(a.fix.position, at) : Infinity;
      const db = b.fix ? distanceM(b.fix.position, at) : Infinity;
      return da - db || a.callsign.localeCompare(b.callsign);
    });
}
