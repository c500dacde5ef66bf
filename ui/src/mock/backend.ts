// An in-memory fake of the Rust console for `npm run dev` in a plain browser, the vitest
// panel tests and the Playwright test. It answers the same commands with the same shapes
// (types from bindings.ts) and enforces the same status table, so the UI's error paths can be
// exercised. It is never part of the Tauri build's behaviour: main.tsx installs it only when
// there is no Tauri runtime and the page runs under the Vite dev server.

import type {
  AddNote,
  CloseIncident,
  ConsoleInit,
  ConsoleState,
  ErrorPayload,
  Facility,
  IncidentDetail,
  IncidentRef,
  IncidentStatus,
  LatLon,
  NewIncident,
  PlaceHit,
  PlaceQuery,
  Settings,
  SetUnitStatus,
  Startup,
  TimelineEntry,
  TimelineEvent,
  UnitOnIncident,
  UnitView,
  UpdateIncident,
} from "../bindings";
import { allowedNext, defaultPriority, distanceM, isCommitted, sortQueue } from "../domain";

/** Options of the fake. */
export interface MockOptions {
  /** Return a pack error from `startup` instead of the console. */
  packError?: boolean;
  demo?: boolean;
  /** Base URL for tiles; tiles may 404. */
  mapBaseUrl?: string;
  /** Clock in ms (injectable for tests). */
  now?: () => number;
  settings?: Partial<Settings>;
}

/** Thrown to the caller as the IPC error payload. */
function fail(code: ErrorPayload["code"], message: string): never {
  throw { code, message } satisfies ErrorPayload;
}

interface IncidentRow {
  detail: IncidentDetail;
}

const CENTRE: LatLon = { lat: 42.5078, lon: 1.5211 };

/** The fake backend. `handle` is the `mockIPC` callback. */
export class MockBackend {
  revision = 1;
  facilities: Facility[];
  units: UnitView[];
  incidents = new Map<string, IncidentRow>();
  settings: Settings;
  private seq = 0;
  private readonly now: () => number;
  private listeners: ((revision: number) => void)[] = [];

  constructor(private readonly opts: MockOptions = {}) {
    this.now = opts.now ?? (() => Date.now());
    this.settings = { language: "auto", theme: "auto", stale_after_s: 120, ...opts.settings };
    const iso = (agoS: number) => new Date(this.now() - agoS * 1000).toISOString();
    this.facilities = [
      { id: "stn-centre", kind: "station", name_zh: "城区派出所", name_en: "Centre Police Station", position: { lat: 42.5065, lon: 1.5205 } },
      { id: "stn-east", kind: "station", name_zh: "东区派出所", name_en: "East Police Station", position: { lat: 42.5105, lon: 1.5395 } },
      { id: "post-meritxell", kind: "post", name_zh: "梅里特谢尔警务站", name_en: "Meritxell Post", position: { lat: 42.5082, lon: 1.5262 } },
      { id: "chk-north", kind: "checkpoint", name_zh: "北检查站", name_en: "North Checkpoint", position: { lat: 42.5195, lon: 1.5312 } },
    ];
    const fix = (lat: number, lon: number, heading: number | null, agoS: number) => ({
      position: { lat, lon },
      fix_time: iso(agoS),
      heading_deg: heading,
      speed_mps: heading === null ? 0 : 8.5,
      accuracy_m: 5,
    });
    const unit = (id: string, callsign: string, kind: UnitView["kind"], home: string, f: UnitView["fix"], sinceS: number): UnitView => ({
      id,
      callsign,
      kind,
      home_station: home,
      status: "available",
      status_since: iso(sinceS),
      incident_id: null,
      incident_number: null,
      fix: f,
    });
    this.units = [
      unit("u-01", "巡01", "patrol_car", "stn-centre", fix(42.5071, 1.5228, 45, 5), 900),
      unit("u-02", "巡02", "patrol_car", "stn-centre", fix(42.5049, 1.5172, 270, 12), 300),
      unit("u-03", "巡03", "patrol_car", "stn-east", fix(42.5112, 1.5360, 120, 8), 1500),
      unit("u-04", "摩01", "motorcycle", "stn-east", fix(42.5090, 1.5310, 200, 400), 60),
      unit("u-05", "步01", "foot_patrol", "post-meritxell", fix(42.5085, 1.5255, null, 30), 2000),
      unit("u-06", "交01", "traffic", "chk-north", fix(42.5188, 1.5318, null, 20), 120),
    ];
    const seed = (t: NewIncident["incident_type"], p: NewIncident["priority"], at: LatLon, address: string, description: string, agoS: number) =>
      this.insertIncident({ incident_type: t, priority: p, location: at, address, description }, iso(agoS), "dispatcher");
    seed("traffic_accident", null, { lat: 42.5062, lon: 1.5190 }, "Avinguda Meritxell, Andorra la Vella", "两车追尾，无人受伤", 600);
    const fire = seed("fire", "P1", { lat: 42.5101, lon: 1.5342 }, "Carrer Prat de la Creu, Escaldes-Engordany", "Smoke from a shop", 120);
    seed("disturbance", null, { lat: 42.5125, lon: 1.5290 }, "Plaça del Poble, Andorra la Vella", "", 1800);
    // One unit already on an incident so the board shows a committed status.
    this.doAssign(fire, "u-03", iso(90));
  }

  /** Called after every change with the new revision (the fake `state-changed` event). */
  onChange(f: (revision: number) => void): void {
    this.listeners.push(f);
  }

  private changed(): void {
    this.revision += 1;
    for (const f of this.listeners) f(this.revision);
  }

  private nowIso(): string {
    return new Date(this.now()).toISOString();
  }

  private nextId(prefix: string): string {
    this.seq += 1;
    return `${prefix}-${String(this.seq).padStart(4, "0")}`;
  }

  private insertIncident(n: NewIncident, at: string, user: string): IncidentDetail {
    const id = this.nextId("inc");
    const number = `2026-${String(this.incidents.size + 1).padStart(4, "0")}`;
    const priority = n.priority ?? defaultPriority(n.incident_type);
    const address = n.address.trim() || this.describe(n.location).address;
    const detail: IncidentDetail = {
      summary: {
        id,
        number,
        incident_type: n.incident_type,
        priority,
        status: "pending",
        location: n.location,
        address,
        created_at: at,
        acknowledged: false,
        assigned: [],
      },
      description: n.description,
      created_by: user,
      disposition: null,
      closed_at: null,
      assignments: [],
      timeline: [],
    };
    this.incidents.set(id, { detail });
    this.log(detail, { kind: "created", incident_type: n.incident_type, priority, address }, at, user);
    return detail;
  }

  private log(d: IncidentDetail, event: TimelineEvent, at = this.nowIso(), user = "dispatcher"): void {
    const entry: TimelineEntry = { id: this.nextId("op"), at, user, event };
    d.timeline.push(entry);
  }

  private get(id: string): IncidentDetail {
    const row = this.incidents.get(id);
    if (!row) fail("not_found", `incident ${id} does not exist`);
    return row.detail;
  }

  private unit(id: string): UnitView {
    const u = this.units.find((x) => x.id === id);
    if (!u) fail("not_found", `unit ${id} does not exist`);
    return u;
  }

  private open(id: string): IncidentDetail {
    const d = this.get(id);
    if (d.summary.status === "closed") fail("incident_closed", `incident ${d.summary.number} is closed`);
    return d;
  }

  private derive(d: IncidentDetail): void {
    const active = d.assignments.filter((a) => a.released_at === null);
    for (const a of d.assignments) a.unit_status = this.unit(a.unit_id).status;
    d.summary.assigned = active.map((a) => a.callsign);
    let status: IncidentStatus = "pending";
    if (d.closed_at) status = "closed";
    else if (active.some((a) => this.unit(a.unit_id).status === "on_scene")) status = "on_scene";
    else if (active.length > 0) status = "dispatched";
    d.summary.status = status;
  }

  private doAssign(d: IncidentDetail, unitId: string, at = this.nowIso()): void {
    const u = this.unit(unitId);
    if (u.incident_id !== null || isCommitted(u.status)) fail("illegal_transition", `${u.callsign} is already assigned to an incident`);
    if (u.status !== "available") fail("illegal_transition", `${u.callsign} is ${u.status} and cannot be dispatched`);
    u.status = "dispatched";
    u.status_since = at;
    u.incident_id = d.summary.id;
    u.incident_number = d.summary.number;
    d.assignments.push({ id: this.nextId("asg"), unit_id: u.id, callsign: u.callsign, unit_status: u.status, assigned_at: at, released_at: null });
    this.log(d, { kind: "unit_assigned", unit_id: u.id, callsign: u.callsign }, at);
    this.derive(d);
  }

  private doRelease(d: IncidentDetail, u: UnitView): void {
    const a = d.assignments.find((x) => x.unit_id === u.id && x.released_at === null);
    if (!a) fail("invalid_input", `${u.callsign} is not assigned to incident ${d.summary.number}`);
    a.released_at = this.nowIso();
    u.status = "available";
    u.status_since = this.nowIso();
    u.incident_id = null;
    u.incident_number = null;
    this.log(d, { kind: "unit_released", unit_id: u.id, callsign: u.callsign });
    this.derive(d);
  }

  startup(): Startup {
    if (this.opts.packError) {
      return {
        state: "pack_error",
        problem: {
          path: "/home/duty/.local/share/outpost/packs/dongsheng.outpost",
          problem: "not an Outpost area pack: the metadata table is missing",
          hint: "Rebuild it with `outpost-server pack build --osm FILE.osm.pbf --out dongsheng.outpost`, or start with --demo.",
        },
      };
    }
    const init: ConsoleInit = {
      pack: {
        path: "demo.outpost",
        name: "Andorra (mock)",
        bounds: [1.4, 42.42, 1.79, 42.66],
        center: CENTRE,
        zoom: 14,
        min_zoom: 0,
        max_zoom: 14,
        attribution: "© OpenStreetMap contributors",
        built_at: "2026-11-29T12:00:00Z",
      },
      map_base_url: this.opts.mapBaseUrl ?? `${globalThis.location?.origin ?? "http://localhost"}/mock-pack`,
      demo: this.opts.demo ?? true,
      user: "dispatcher",
      settings: { ...this.settings },
    };
    return { state: "ready", init };
  }

  consoleState(): ConsoleState {
    return {
      revision: this.revision,
      units: structuredClone([...this.units].sort((a, b) => a.callsign.localeCompare(b.callsign))),
      incidents: sortQueue([...this.incidents.values()].map((r) => structuredClone(r.detail.summary))),
      facilities: structuredClone(this.facilities),
    };
  }

  detail(id: string): IncidentDetail {
    const d = this.get(id);
    this.derive(d);
    return structuredClone(d);
  }

  /** The `mockIPC` callback: command name and `{ args }` payload -> result or thrown ErrorPayload. */
  handle = (cmd: string, payload?: unknown): unknown => {
    const args = (payload as { args?: unknown } | undefined)?.args;
    switch (cmd) {
      case "startup":
        return this.startup();
      case "console_state":
        return this.consoleState();
      case "incident_detail":
        return this.detail((args as IncidentRef).incident_id);
      case "create_incident": {
        const n = args as NewIncident;
        if (!Number.isFinite(n.location.lat) || !Number.isFinite(n.location.lon)) fail("invalid_input", "location is not a number");
        const d = this.insertIncident(n, this.nowIso(), "dispatcher");
        this.changed();
        return this.detail(d.summary.id);
      }
      case "update_incident": {
        const a = args as UpdateIncident;
        const d = this.open(a.incident_id);
        const f = a.fields;
        if (f.incident_type) d.summary.incident_type = f.incident_type;
        if (f.priority) d.summary.priority = f.priority;
        if (f.location) d.summary.location = f.location;
        if (f.address !== null) d.summary.address = f.address;
        if (f.description !== null) d.description = f.description;
        this.log(d, { kind: "fields_changed", fields: f });
        this.changed();
        return this.detail(d.summary.id);
      }
      case "acknowledge_incident": {
        const d = this.open((args as IncidentRef).incident_id);
        if (!d.summary.acknowledged) {
          d.summary.acknowledged = true;
          this.log(d, { kind: "acknowledged" });
          this.changed();
        }
        return this.detail(d.summary.id);
      }
      case "assign_unit": {
        const a = args as UnitOnIncident;
        const d = this.open(a.incident_id);
        this.doAssign(d, a.unit_id);
        this.changed();
        return this.detail(d.summary.id);
      }
      case "release_unit": {
        const a = args as UnitOnIncident;
        const d = this.open(a.incident_id);
        this.doRelease(d, this.unit(a.unit_id));
        this.changed();
        return this.detail(d.summary.id);
      }
      case "set_unit_status": {
        const a = args as SetUnitStatus;
        const u = this.unit(a.unit_id);
        if (a.to === "dispatched" || !allowedNext(u.status).includes(a.to)) {
          fail("illegal_transition", `a unit that is ${u.status} cannot become ${a.to} (${u.callsign})`);
        }
        if (isCommitted(a.to) && u.incident_id === null) {
          fail("illegal_transition", `a unit must be assigned to an incident to become ${a.to}`);
        }
        if (a.to === "available" && u.incident_id !== null) {
          // Clearing a committed unit releases its assignment.
          this.doRelease(this.get(u.incident_id), u);
        } else {
          u.status = a.to;
          u.status_since = this.nowIso();
          if (u.incident_id) {
            const d = this.get(u.incident_id);
            this.log(d, { kind: "unit_status", unit_id: u.id, callsign: u.callsign, to: a.to });
            this.derive(d);
          }
        }
        this.changed();
        return structuredClone(u);
      }
      case "add_note": {
        const a = args as AddNote;
        if (!a.text.trim()) fail("invalid_input", "a note cannot be empty");
        const d = this.open(a.incident_id);
        this.log(d, { kind: "note", text: a.text.trim() });
        this.changed();
        return this.detail(d.summary.id);
      }
      case "close_incident": {
        const a = args as CloseIncident;
        const d = this.open(a.incident_id);
        for (const asg of d.assignments.filter((x) => x.released_at === null)) this.doRelease(d, this.unit(asg.unit_id));
        d.closed_at = this.nowIso();
        d.disposition = a.disposition;
        this.log(d, { kind: "closed", disposition: a.disposition, summary: a.summary });
        this.derive(d);
        this.changed();
        return this.detail(d.summary.id);
      }
      case "search_places":
        return this.search(args as PlaceQuery);
      case "describe_location":
        return this.describe(args as LatLon);
      case "get_settings":
        return { ...this.settings };
      case "save_settings": {
        const s = args as Settings;
        if (!(s.stale_after_s >= 10)) fail("invalid_input", "stale_after_s must be at least 10 seconds");
        this.settings = { ...s };
        return { ...this.settings };
      }
      default:
        fail("invalid_input", `unknown command ${cmd}`);
    }
  };

  private places: PlaceHit[] = [
    { name: "Avinguda Meritxell", name_zh: "梅里特谢尔大街", name_en: null, kind: "street", category: "primary", position: { lat: 42.5076, lon: 1.5262 }, distance_m: null, address: "Avinguda Meritxell, Andorra la Vella" },
    { name: "Carrer de la Unió", name_zh: null, name_en: null, kind: "street", category: "residential", position: { lat: 42.5068, lon: 1.5226 }, distance_m: null, address: "Carrer de la Unió, Andorra la Vella" },
    { name: "Escaldes-Engordany", name_zh: "埃斯卡尔德-恩戈尔达", name_en: null, kind: "place", category: "town", position: { lat: 42.5096, lon: 1.5388 }, distance_m: null, address: "Escaldes-Engordany" },
    { name: "Hospital Nostra Senyora de Meritxell", name_zh: null, name_en: "Meritxell Hospital", kind: "poi", category: "hospital", position: { lat: 42.5113, lon: 1.5372 }, distance_m: null, address: "Avinguda Fiter i Rossell, Escaldes-Engordany" },
  ];

  private search(q: PlaceQuery): PlaceHit[] {
    const text = q.text.trim().toLowerCase();
    if (!text) return [];
    return this.places
      .filter((p) => [p.name, p.name_zh, p.name_en, p.address].some((s) => s?.toLowerCase().includes(text)))
      .map((p) => ({ ...p, distance_m: q.near ? Math.round(distanceM(q.near, p.position)) : null }))
      .sort((a, b) => (a.distance_m ?? 0) - (b.distance_m ?? 0))
      .slice(0, q.limit);
  }

  private describe(at: LatLon) {
    const nearest = [...this.places]
      .filter((p) => p.kind === "street")
      .sort((a, b) => distanceM(a.position, at) - distanceM(b.position, at))[0];
    const street = nearest && distanceM(nearest.position, at) < 150 ? nearest.name : null;
    const place = at.lon > 1.532 ? "Escaldes-Engordany" : "Andorra la Vella";
    return { address: street ? `${street}, ${place}` : place, street, place };
  }

  /** Test hook: change a unit's status behind the UI's back (as another console would). */
  forceUnitStatus(unitId: string, to: UnitView["status"]): void {
    const u = this.unit(unitId);
    u.status = to;
    u.status_since = this.nowIso();
  }
}
