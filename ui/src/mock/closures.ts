// The fake backend's road closures, road line and facility import (issue 5), kept apart from
// backend.ts so the helpers working on it at the same time do not collide. The shapes are the
// bindings'; the behaviour is a stand-in: `road_line` inserts midpoints instead of following
// roads, and the import shifts GCJ-02/BD-09 coordinates by a fixed offset instead of the real
// conversion (the Rust side uses undrift_gps).

import { distanceM } from "../domain";
import type {
  ClosureRef,
  ClosureShape,
  ErrorPayload,
  Facility,
  FacilityKind,
  ImportFacilities,
  ImportProblem,
  ImportReport,
  LatLon,
  NewRoadClosure,
  RoadClosureView,
  RoadLineQuery,
} from "../bindings";

/** Commands this module answers. */
export const CLOSURE_COMMANDS = ["road_closures", "set_road_closure", "lift_road_closure", "road_line", "import_facilities"] as const;

/** `MAX_REASON_CHARS` in crates/outpost-domain/src/road_closure.rs. */
export const MOCK_MAX_REASON_CHARS = 500;

/** What the handler needs from the fake backend. */
export interface ClosureHost {
  /** The clock, ms. */
  now: () => number;
  /** Who writes. */
  user: string;
  /** The fake's facilities (the import adds to this list in place). */
  facilities: Facility[];
  /** Bumps the revision and emits `state-changed`. */
  changed: () => void;
}

/** The closures the fake holds, in the order they were set. */
export class MockClosures {
  list: RoadClosureView[] = [];
  private seq = 0;

  /** Answers one of CLOSURE_COMMANDS. */
  handle(host: ClosureHost, cmd: string, args: unknown): unknown {
    switch (cmd) {
      case "road_closures":
        return this.views(host.now());
      case "set_road_closure":
        return this.set(host, args as NewRoadClosure);
      case "lift_road_closure":
        return this.lift(host, args as ClosureRef);
      case "road_line":
        return roadLine(args as RoadLineQuery);
      case "import_facilities":
        return importFacilities(host, args as ImportFacilities);
      default:
        return fail("invalid_input", `unknown command ${cmd}`);
    }
  }

  /** How many closures apply at `nowMs`. */
  activeCount(nowMs: number): number {
    return this.list.filter((v) => isActive(v, nowMs)).length;
  }

  /** Active first (newest set first), then the rest; `active` as of `nowMs`. */
  views(nowMs: number): RoadClosureView[] {
    const all = this.list.map((v) => ({ ...structuredClone(v), active: isActive(v, nowMs) }));
    return all.sort((a, b) => Number(b.active) - Number(a.active) || b.set_at.localeCompare(a.set_at));
  }

  private set(host: ClosureHost, n: NewRoadClosure): RoadClosureView {
    const reason = n.reason.trim();
    if (!reason) fail("invalid_input", "reason: a closure needs a reason");
    if ([...reason].length > MOCK_MAX_REASON_CHARS) fail("invalid_input", `reason has ${[...reason].length} characters, at most ${MOCK_MAX_REASON_CHARS}`);
    checkShape(n.shape);
    if (n.ends_at !== null && Number.isNaN(Date.parse(n.ends_at))) fail("invalid_input", `ends_at ${n.ends_at} is not a time`);
    let id = n.closure_id;
    const existing = id ? this.list.find((v) => v.closure.closure_id === id) : undefined;
    if (id && !existing) fail("not_found", `closure ${id} does not exist`);
    // Lifting is final (as dispatch.rs): a lifted closure is never reactivated.
    if (existing?.closure.lifted) {
      fail("illegal_transition", `closure ${id} was lifted by ${existing.set_by} at ${existing.set_at}; draw a new closure`);
    }
    if (!id) {
      this.seq += 1;
      id = `closure-${String(this.seq).padStart(4, "0")}`;
    }
    const view: RoadClosureView = {
      closure: { closure_id: id, shape: structuredClone(n.shape), reason, ends_at: n.ends_at, lifted: false },
      active: true,
      set_by: host.user,
      set_at: new Date(host.now()).toISOString(),
      closed_segments: n.shape.type === "line" ? n.shape.points.length - 1 : n.shape.ring.length,
    };
    if (existing) this.list[this.list.indexOf(existing)] = view;
    else this.list.push(view);
    host.changed();
    return { ...structuredClone(view), active: isActive(view, host.now()) };
  }

  private lift(host: ClosureHost, r: ClosureRef): RoadClosureView {
    const v = this.list.find((x) => x.closure.closure_id === r.closure_id);
    if (!v) return fail("not_found", `closure ${r.closure_id} does not exist`);
    v.closure.lifted = true;
    v.active = false;
    v.set_by = host.user;
    v.set_at = new Date(host.now()).toISOString();
    host.changed();
    return { ...structuredClone(v), active: false };
  }
}

function fail(code: ErrorPayload["code"], message: string): never {
  throw { code, message } satisfies ErrorPayload;
}

function isActive(v: RoadClosureView, nowMs: number): boolean {
  return !v.closure.lifted && (v.closure.ends_at === null || Date.parse(v.closure.ends_at) > nowMs);
}

function validPoint(p: LatLon): boolean {
  return Number.isFinite(p.lat) && Number.isFinite(p.lon) && Math.abs(p.lat) <= 90 && Math.abs(p.lon) <= 180;
}

function checkShape(s: ClosureShape): void {
  const pts = s.type === "line" ? s.points : s.ring;
  const min = s.type === "line" ? 2 : 3;
  if (pts.length < min) fail("invalid_input", `a closed ${s.type === "line" ? "road needs at least 2 points" : "area needs at least 3 corners"}, got ${pts.length}`);
  const bad = pts.findIndex((p) => !validPoint(p));
  if (bad >= 0) fail("invalid_input", `point ${bad + 1} is not a WGS-84 position`);
}

/**
 * The fake road line: the points with the midpoint of each leg inserted. Clicks that are all
 * in one place (no leg longer than 1 m) are refused as crates/outpost-app/src/dispatch.rs
 * refuses a line that snaps to one place.
 */
export function roadLine(q: RoadLineQuery): LatLon[] {
  if (q.points.length < 2 || q.points.length > 50) fail("invalid_input", `road_line takes 2 to 50 points, got ${q.points.length}`);
  const out: LatLon[] = [];
  q.points.forEach((p, i) => {
    if (!validPoint(p)) fail("invalid_input", `point ${i + 1} is not a WGS-84 position`);
    if (i > 0) {
      const a = q.points[i - 1]!;
      out.push({ lat: (a.lat + p.lat) / 2, lon: (a.lon + p.lon) / 2 });
    }
    out.push({ ...p });
  });
  if (!out.some((p, i) => i > 0 && distanceM(out[i - 1]!, p) > 1)) {
    fail("invalid_input", "points: these points snap to the same place on the road; click further apart along it");
  }
  return out;
}

const KINDS: FacilityKind[] = ["station", "post", "checkpoint"];

/**
 * The fake's area pack bounds, `[west, south, east, north]` WGS-84 degrees: the `bounds` the
 * fake's startup (backend.ts) gives its "Andorra (mock)" pack.
 */
export const MOCK_PACK_BOUNDS: [number, number, number, number] = [1.4, 42.42, 1.79, 42.66];
/** `OUTSIDE_PACK_MARGIN_DEG` in crates/outpost-app/src/import.rs (degrees, about 5 km). */
const OUTSIDE_PACK_MARGIN_DEG = 0.05;

/** Warnings for facilities outside `bounds` widened by the margin, worded as import.rs's `outside_pack`. */
export function outsidePack(facilities: Facility[], bounds: [number, number, number, number] = MOCK_PACK_BOUNDS): ImportProblem[] {
  const [w, s, e, n] = bounds;
  const m = OUTSIDE_PACK_MARGIN_DEG;
  return facilities
    .filter((f) => !(f.position.lat >= s - m && f.position.lat <= n + m) || !(f.position.lon >= w - m && f.position.lon <= e + m))
    .map((f) => ({
      at: `facility ${f.id}`,
      message: `${f.position.lat.toFixed(6)},${f.position.lon.toFixed(6)} is outside the area pack (${s.toFixed(3)}..${n.toFixed(3)} N, ${w.toFixed(3)}..${e.toFixed(3)} E): check the latitude/longitude order and the declared datum`,
    }));
}
/** The fake's datum "conversion": a fixed shift (degrees), not the real formula. */
const FAKE_SHIFT: Record<ImportFacilities["datum"], LatLon> = {
  wgs84: { lat: 0, lon: 0 },
  gcj02: { lat: -0.0001, lon: -0.0001 },
  bd09: { lat: -0.0002, lon: -0.0002 },
};

interface RawRow {
  /** `line 4` or `feature 2`. */
  at: string;
  /** `line 4, column lat` or `feature 2, property kind` (as crates/outpost-app/src/import.rs says it). */
  field: (k: string) => string;
  get: (k: string) => string | undefined;
}

function parseRows(text: string, format: ImportFacilities["format"], problems: ImportProblem[]): RawRow[] {
  const clean = text.replace(/^\uFEFF/, "");
  if (format === "csv") {
    const lines = clean.split(/\r?\n/);
    const header = (lines[0] ?? "").split(",").map((h) => h.trim());
    for (const need of ["id", "kind", "name_zh", "name_en", "lat", "lon"]) {
      if (!header.includes(need)) problems.push({ at: "line 1", message: `the header has no column ${need}` });
    }
    const rows: RawRow[] = [];
    lines.forEach((line, i) => {
      if (i === 0 || !line.trim()) return;
      const cells = line.split(",").map((c) => c.trim());
      rows.push({ at: `line ${i + 1}`, field: (k) => `line ${i + 1}, column ${k}`, get: (k) => cells[header.indexOf(k)] });
    });
    return rows;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(clean);
  } catch (e) {
    problems.push({ at: "file", message: `not JSON: ${e instanceof Error ? e.message : String(e)}` });
    return [];
  }
  const features = (doc as { type?: string; features?: unknown[] }).features;
  if ((doc as { type?: string }).type !== "FeatureCollection" || !Array.isArray(features)) {
    problems.push({ at: "file", message: "not a GeoJSON FeatureCollection" });
    return [];
  }
  return features.map((f, i) => {
    const feat = f as { geometry?: { type?: string; coordinates?: unknown[] }; properties?: Record<string, unknown> };
    const c = feat.geometry?.type === "Point" ? feat.geometry.coordinates : undefined;
    return {
      at: `feature ${i + 1}`,
      field: (k: string) => `feature ${i + 1}, property ${k}`,
      get: (k: string) => {
        if (k === "lon") return c?.[0] === undefined ? undefined : String(c[0]);
        if (k === "lat") return c?.[1] === undefined ? undefined : String(c[1]);
        const v = feat.properties?.[k];
        return v === undefined || v === null ? undefined : String(v);
      },
    };
  });
}

/** The fake `import_facilities`: reads, checks, and with `commit` adds or replaces by id. */
export function importFacilities(host: ClosureHost, a: ImportFacilities): ImportReport {
  const problems: ImportProblem[] = [];
  const facilities: Facility[] = [];
  const shift = FAKE_SHIFT[a.datum];
  for (const row of parseRows(a.text, a.format, problems)) {
    const id = row.get("id") ?? "";
    const kind = row.get("kind") ?? "";
    const lat = Number(row.get("lat"));
    const lon = Number(row.get("lon"));
    const before = problems.length;
    if (!id) problems.push({ at: row.field("id"), message: "id is empty" });
    if (!KINDS.includes(kind as FacilityKind)) problems.push({ at: row.field("kind"), message: `kind ${JSON.stringify(kind)} is not station, post or checkpoint` });
    if (!Number.isFinite(lat) || Math.abs(lat) > 90) problems.push({ at: row.field("lat"), message: `latitude ${row.get("lat") ?? ""} is outside −90..90` });
    if (!Number.isFinite(lon) || Math.abs(lon) > 180) problems.push({ at: row.field("lon"), message: `longitude ${row.get("lon") ?? ""} is outside −180..180` });
    if (problems.length === before && lat === 0 && lon === 0) {
      problems.push({ at: row.field("lat"), message: "latitude and longitude are both 0 (the Gulf of Guinea): the position is missing" });
    }
    if (problems.length > before) continue;
    facilities.push({
      id,
      kind: kind as FacilityKind,
      name_zh: row.get("name_zh") ?? "",
      name_en: row.get("name_en") ?? "",
      position: { lat: lat + shift.lat, lon: lon + shift.lon },
    });
  }
  let written = 0;
  if (a.commit && problems.length === 0 && facilities.length > 0) {
    // As import.rs: only a new facility or one that differs from the stored one is written
    // (and counted); re-importing an unchanged file writes nothing.
    const same = (x: Facility, y: Facility) =>
      x.kind === y.kind && x.name_zh === y.name_zh && x.name_en === y.name_en && x.position.lat === y.position.lat && x.position.lon === y.position.lon;
    for (const f of facilities) {
      const i = host.facilities.findIndex((x) => x.id === f.id);
      const old = i >= 0 ? host.facilities[i] : undefined;
      if (old && same(old, f)) continue;
      if (i >= 0) host.facilities[i] = f;
      else host.facilities.push(f);
      written += 1;
    }
    if (written > 0) host.changed();
  }
  return { facilities, problems, warnings: outsidePack(facilities), written };
}
