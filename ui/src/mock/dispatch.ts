// The fake backend's dispatch intelligence (issue 5): closest units, the field route and 1-3-5
// coverage, kept apart from backend.ts so the helpers working on it at the same time do not
// collide. A stand-in for the road router (crates/outpost-geo/src/routing.rs): the road
// distance is the straight line × ROAD_FACTOR driven at MOCK_SPEED_MPS, a route is the two
// end points, and coverage draws a few lines per band around each source with shares that
// move with the number of available units.

import type { ClosestUnits, CoverageView, Facility, FieldRoute, IncidentDetail, LatLon, UnitEta, UnitView } from "../bindings";
import { distanceM } from "../domain";

/** Commands this module answers. */
export const DISPATCH_COMMANDS = ["closest_units", "field_route", "coverage"] as const;

/** Road distance over straight-line distance in the fake. */
export const ROAD_FACTOR = 1.4;
/** The fake's driving speed: 40 km/h in metres per second. */
export const MOCK_SPEED_MPS = 40 / 3.6;
/** Units the fake sends a route for (as the backend: the first five ranked). */
const ROUTED = 5;
/** The fake's road network: a disc of this radius, metres, around MOCK_ROAD_CENTRE. */
export const MOCK_ROAD_RADIUS_M = 10_000;
/** Centre of the fake's road network (Andorra la Vella). */
export const MOCK_ROAD_CENTRE: LatLon = { lat: 42.5078, lon: 1.5211 };
/** As routing.rs MAX_SNAP_M: a point farther than this from every road does not snap, metres. */
export const MOCK_MAX_SNAP_M = 5_000;
/** The fake pack's drivable road length, metres. */
export const MOCK_ROAD_TOTAL_M = 412_000;
/** Coverage share each station or post / available unit with a position adds for 1, 3 and 5 minutes. */
const SHARE_PER_FACILITY = [0.01, 0.04, 0.07];
const SHARE_PER_UNIT = [0.016, 0.05, 0.07];

/** What the handler needs from the fake backend. */
export interface DispatchHost {
  units: UnitView[];
  facilities: Facility[];
  /** The incident (throws the backend's not_found error when there is none). */
  incident: (id: string) => IncidentDetail;
  /** Field mode: this console's unit id. */
  fieldUnit: string | null;
  /** Active road closures (counted only; the fake's routes ignore them). */
  closuresActive: () => number;
}

/**
 * Routing's snap message for a point too far from the fake's roads (as RoutingError::Snap in
 * routing.rs), or null when it snaps.
 */
function offRoad(p: LatLon): string | null {
  const nearest = distanceM(p, MOCK_ROAD_CENTRE) - MOCK_ROAD_RADIUS_M;
  if (nearest <= MOCK_MAX_SNAP_M) return null;
  return `no drivable road within ${MOCK_MAX_SNAP_M} m of ${p.lat.toFixed(6)},${p.lon.toFixed(6)} (nearest ${Math.round(nearest)} m)`;
}

function etaOf(from: LatLon, to: LatLon) {
  const straight = distanceM(from, to);
  const road = straight * ROAD_FACTOR;
  return { straight_m: Math.round(straight), distance_m: Math.round(road), eta_s: Math.round(road / MOCK_SPEED_MPS) };
}

/**
 * `closest_units`: available units ranked by the fake's ETA; then those off the roads
 * (problem no_road, detail as routing.rs: "no drivable road within 5000 m of … (nearest N m)")
 * and those without a position ("the unit has never reported a position"). An incident off
 * the fake's roads (more than 15 km from Andorra la Vella) cannot be ranked: `unavailable`
 * says why, as dispatch.rs, and the units come without an ETA, by straight-line distance.
 */
export function closestUnits(host: DispatchHost, incidentId: string): ClosestUnits {
  const t0 = performance.now();
  const inc = host.incident(incidentId).summary;
  const available = host.units.filter((u) => u.status === "available" && u.incident_id === null);
  const incidentOff = offRoad(inc.location);
  const ranked: UnitEta[] = [];
  const noRoad: UnitEta[] = [];
  const problems: UnitEta[] = [];
  for (const u of available) {
    const base = { unit_id: u.id, callsign: u.callsign, kind: u.kind, fix: u.fix ? structuredClone(u.fix) : null, route: null };
    if (!u.fix) {
      problems.push({ ...base, eta_s: null, distance_m: null, straight_m: null, problem: "no_position", problem_detail: "the unit has never reported a position" });
      continue;
    }
    const e = etaOf(u.fix.position, inc.location);
    const off = offRoad(u.fix.position);
    if (incidentOff) ranked.push({ ...base, eta_s: null, distance_m: null, straight_m: e.straight_m, problem: null, problem_detail: null });
    else if (off) noRoad.push({ ...base, eta_s: null, distance_m: null, straight_m: e.straight_m, problem: "no_road", problem_detail: off });
    else ranked.push({ ...base, ...e, problem: null, problem_detail: null });
  }
  const measure = (u: UnitEta) => u.eta_s ?? u.straight_m ?? Number.POSITIVE_INFINITY;
  const order = (a: UnitEta, b: UnitEta) => measure(a) - measure(b) || a.callsign.localeCompare(b.callsign);
  ranked.sort(order);
  noRoad.sort(order);
  if (!incidentOff) {
    ranked.forEach((c, i) => {
      if (i < ROUTED && c.fix) c.route = [{ ...c.fix.position }, { ...inc.location }];
    });
  }
  problems.sort((a, b) => a.callsign.localeCompare(b.callsign));
  return {
    incident_id: inc.id,
    candidates: [...ranked, ...noRoad, ...problems],
    closures_active: host.closuresActive(),
    unavailable: incidentOff && `the incident is off the road network: ${incidentOff}; units are listed by straight-line distance, not by road`,
    took_ms: Math.round((performance.now() - t0) * 1000) / 1000,
  };
}

/** `field_route`: null unless a field unit with an assignment; its route or why there is none. */
export function fieldRoute(host: DispatchHost): FieldRoute | null {
  const u = host.units.find((x) => x.id === host.fieldUnit);
  if (!u || !u.incident_id) return null;
  const inc = host.incident(u.incident_id).summary;
  if (!u.fix) return { incident_id: inc.id, route: null, problem: "no_position", problem_detail: "this unit has no position yet" };
  const e = etaOf(u.fix.position, inc.location);
  return {
    incident_id: inc.id,
    route: { eta_s: e.eta_s, distance_m: e.distance_m, line: [{ ...u.fix.position }, { ...inc.location }] },
    problem: null,
    problem_detail: null,
  };
}

/** A point `m` metres from `at` towards `bearingDeg` (flat-earth, fine for a few km). */
function offset(at: LatLon, m: number, bearingDeg: number): [number, number] {
  const r = (bearingDeg * Math.PI) / 180;
  const lat = at.lat + (m * Math.cos(r)) / 111_320;
  const lon = at.lon + (m * Math.sin(r)) / (111_320 * Math.cos((at.lat * Math.PI) / 180));
  return [Number(lon.toFixed(6)), Number(lat.toFixed(6))];
}

/**
 * `coverage`: around each source (stations, posts and available units with a position; as in
 * dispatch.rs checkpoints are no source) four spokes, split into the 1, 3 and 5 minute bands
 * (at 40 km/h over roads 1.4× the straight line), plus three fixed hole lines at the area's
 * edge. `share` (the live figure) counts the available units only, as the real backend:
 * 0.08 / 0.25 / 0.35 with the fake's five available units, 0 when none is;
 * `share_with_facilities` adds the two stations and the post: 0.11 / 0.37 / 0.56.
 */
export function coverage(host: DispatchHost): CoverageView {
  const t0 = performance.now();
  const units = host.units.filter((u) => u.status === "available" && u.incident_id === null && u.fix);
  const facilities = host.facilities.filter((f) => f.kind === "station" || f.kind === "post");
  const sources: LatLon[] = [...facilities.map((f) => f.position), ...units.map((u) => (u.fix as NonNullable<UnitView["fix"]>).position)];
  const reach = [60, 180, 300].map((s) => (s * MOCK_SPEED_MPS) / ROAD_FACTOR);
  const bands: [number, number][][][] = [[], [], [], []];
  sources.forEach((at, k) => {
    for (let spoke = 0; spoke < 4; spoke++) {
      const bearing = spoke * 90 + k * 17;
      let from = 0;
      reach.forEach((to, b) => {
        (bands[b] as [number, number][][]).push([offset(at, from, bearing), offset(at, to, bearing)]);
        from = to;
      });
    }
  });
  const c = { lat: 42.5078, lon: 1.5211 };
  (bands[3] as [number, number][][]).push(
    [offset(c, 2600, 300), offset(c, 3400, 315)],
    [offset(c, 2800, 200), offset(c, 3300, 215)],
    [offset(c, 3000, 60), offset(c, 3600, 70)],
  );
  const shareOf = (nFacilities: number) =>
    [0, 1, 2].map((b) => Math.min(1, Number((nFacilities * (SHARE_PER_FACILITY[b] as number) + units.length * (SHARE_PER_UNIT[b] as number)).toFixed(4))));
  const share = shareOf(0);
  return {
    share,
    reached_m: share.map((s) => Math.round(s * MOCK_ROAD_TOTAL_M)),
    share_with_facilities: shareOf(facilities.length),
    total_m: MOCK_ROAD_TOTAL_M,
    bands,
    facilities: facilities.length,
    units: units.length,
    closures_active: host.closuresActive(),
    took_ms: Math.round((performance.now() - t0) * 1000) / 1000,
    unavailable: null,
  };
}

/** Answers one of DISPATCH_COMMANDS. */
export function handleDispatch(host: DispatchHost, cmd: string, args: unknown): unknown {
  switch (cmd) {
    case "closest_units":
      return closestUnits(host, (args as { incident_id: string }).incident_id);
    case "field_route":
      return fieldRoute(host);
    case "coverage":
      return coverage(host);
    default:
      throw { code: "invalid_input", message: `unknown command ${cmd}` };
  }
}
