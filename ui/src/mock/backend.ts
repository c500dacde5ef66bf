// An in-memory fake of the Rust console for `npm run dev` in a plain browser, the vitest
// panel tests and the Playwright test. It answers the same commands with the same shapes
// (types from bindings.ts) and enforces the same status table, so the UI's error paths can be
// exercised. It is never part of the Tauri build's behaviour: main.tsx installs it only when
// there is no Tauri runtime and the page runs under the Vite dev server.

import type {
  AddNote,
  BindDevice,
  CloseIncident,
  ConflictSide,
  ConflictView,
  ConsoleInit,
  ConsoleState,
  DeviceView,
  ErrorPayload,
  ExportedTrack,
  ExportTrack,
  Facility,
  FieldView,
  Fix,
  GpsStatus,
  IncidentDetail,
  IncidentRef,
  IncidentStatus,
  Lane,
  LaneCounts,
  LatLon,
  NewIncident,
  ParkedOp,
  PlaceHit,
  PlaceQuery,
  ResolveConflict,
  Settings,
  SetUnitStatus,
  Startup,
  SyncStatus,
  TimelineEntry,
  TimelineEvent,
  Track,
  TrackQuery,
  UnitOnIncident,
  UnitView,
  UpdateIncident,
} from "../bindings";
import { allowedNext, defaultPriority, distanceM, isCommitted, sortQueue } from "../domain";
import { parseServerUrl } from "../sync";
import { AUTH_COMMANDS, MockAuth, type MockAuthOptions } from "./auth";
import { CLOSURE_COMMANDS, MockClosures } from "./closures";
import { DISPATCH_COMMANDS, handleDispatch } from "./dispatch";

/**
 * The scripted link to the sync server: offline (the link was lost `offlineSinceAgoS` before
 * the fake started) for `offlineMs`, then syncing for `syncingMs` while the outbox drains lane
 * by lane (critical first), then online. With `server_url: null` in the settings: alone.
 */
export interface MockSyncScript {
  offlineMs: number;
  syncingMs: number;
  offlineSinceAgoS: number;
}

const DEFAULT_SYNC: MockSyncScript = { offlineMs: 8000, syncingMs: 4000, offlineSinceAgoS: 420 };

/** The fake's sync server (a documentation-range address; nothing is contacted). */
export const MOCK_SERVER_URL = "http://10.20.0.5:8443";
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
  /** The scripted offline → syncing → online sequence (times in ms / s). */
  sync?: Partial<MockSyncScript>;
  /**
   * Field laptop mode: the id of the unit this console is (`outpost --unit CALLSIGN`). The fake
   * then dispatches it to the traffic accident and scripts a receiver (`gps_tick`).
   */
  fieldUnit?: string;
  /** Field mode: ms between scripted receiver fixes (install.ts runs the timer); 0: none. Default 1000. */
  gpsTickMs?: number;
  /** Sign-in (issue 6): where it starts; default signed in as the commander "dispatcher". */
  auth?: MockAuthOptions;
}

/** `MAX_TRACK_POINTS` in crates/outpost-app/src/ipc.rs: most fixes one `unit_track` answer carries. */
export const MOCK_MAX_TRACK_POINTS = 20_000;
/** Seconds of history the fake holds for each unit at start, one fix every `HISTORY_STEP_S`. */
export const HISTORY_S = 2 * 3600;
export const HISTORY_STEP_S = 10;
/** Where the fake says it writes exports. */
export const MOCK_EXPORT_DIR = "/home/duty/.local/share/outpost/exports";

/** A device as the fake holds it (the DeviceView plus when it last reported). */
type DeviceRow = DeviceView;

/** Compact UTC time for export file names, e.g. `20261129T101500Z`. */
function compactUtc(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z");
}

/** A small deterministic generator (LCG) so the fake's tracks are the same on every run. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 4294967296;
  };
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
  /** Who this console writes as: the dispatcher, or in field mode the unit's callsign. */
  user = "dispatcher";
  private listeners: ((revision: number) => void)[] = [];
  /** Open conflicts, one of each kind at start. */
  conflictList: ConflictView[] = [];
  /** Ops the server refused. */
  parked: ParkedOp[] = [];
  private readonly script: MockSyncScript;
  /** When the script (re)started, ms. */
  private scriptStart: number;
  /** Ops written while not connected, per lane (drained while syncing). */
  private outbox: LaneCounts = { critical: 4, notes: 2, positions: 180 };
  /** The device registry: unbound devices waiting for a commander, and bound ones. */
  devices: DeviceRow[] = [];
  /** Each unit's position history, oldest first (each fix once). */
  history = new Map<string, Fix[]>();
  /** Exports written (path, format, points), newest last. */
  exports: ExportedTrack[] = [];
  /** Field mode: the scripted receiver. */
  gps: GpsStatus | null = null;
  /** Field mode: when the unit acknowledged its current assignment (by assignment id). */
  private acknowledged = new Map<string, string>();
  /** Road closures (issue 5; the commands are answered in closures.ts). */
  closures = new MockClosures();
  /** Sign-in (issue 6; the commands are answered in auth.ts). */
  auth: MockAuth;

  constructor(private readonly opts: MockOptions = {}) {
    this.now = opts.now ?? (() => Date.now());
    this.auth = new MockAuth(opts.auth ?? {}, this.now, opts.settings?.server_url === undefined ? MOCK_SERVER_URL : opts.settings.server_url);
    this.settings = { language: "auto", theme: "auto", stale_after_s: 120, server_url: MOCK_SERVER_URL, ...opts.settings };
    this.script = { ...DEFAULT_SYNC, ...opts.sync };
    this.scriptStart = this.now();
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
    const accident = seed("traffic_accident", null, { lat: 42.5062, lon: 1.5190 }, "Avinguda Meritxell, Andorra la Vella", "两车追尾，无人受伤", 600);
    const fire = seed("fire", "P1", { lat: 42.5101, lon: 1.5342 }, "Carrer Prat de la Creu, Escaldes-Engordany", "Smoke from a shop", 120);
    seed("disturbance", null, { lat: 42.5125, lon: 1.5290 }, "Plaça del Poble, Andorra la Vella", "", 1800);
    // One unit already on an incident so the board shows a committed status.
    this.doAssign(fire, "u-03", iso(90));
    // A theft closed 20 minutes ago (shown with "show closed"), edited elsewhere while closing.
    const theft = seed("theft", null, { lat: 42.5071, lon: 1.5245 }, "Carrer de la Unió, Andorra la Vella", "手机被盗", 2400);
    theft.closed_at = iso(1200);
    theft.disposition = "report_taken";
    this.log(theft, { kind: "closed", disposition: "report_taken", summary: "已登记，转刑侦" }, iso(1200));
    this.derive(theft);
    this.seedConflicts(accident, fire, theft, iso);
    this.seedHistory();
    this.seedDevices(iso);
    if (opts.fieldUnit) this.seedField(opts.fieldUnit, accident);
  }

  /**
   * Two hours of history per unit with a fix, one fix every 10 s, ending at its latest fix: a
   * drive with slow turns and a few stops (patrol cars ~8 m/s, motorcycles faster, foot ~1.3 m/s).
   */
  private seedHistory(): void {
    const speedOf: Record<UnitView["kind"], number> = { patrol_car: 8, motorcycle: 10, foot_patrol: 1.3, post_team: 0.5, tactical: 8, traffic: 6 };
    this.units.forEach((u, k) => {
      if (!u.fix) return;
      const rnd = lcg(7919 * (k + 1));
      const end = Date.parse(u.fix.fix_time);
      const pts: Fix[] = [{ ...u.fix }];
      let { lat, lon } = u.fix.position;
      let heading = u.fix.heading_deg ?? rnd() * 360;
      const m = 1 / 111_320;
      for (let i = 1; i <= HISTORY_S / HISTORY_STEP_S; i++) {
        const stopped = Math.floor(i / 40) % 4 === 3;
        const v = stopped ? 0 : speedOf[u.kind] * (0.7 + 0.6 * rnd());
        heading = (heading + (rnd() - 0.5) * 50 + 360) % 360;
        // Walk backwards: the earlier fix lies behind the later one.
        const d = v * HISTORY_STEP_S;
        lat -= d * Math.cos((heading * Math.PI) / 180) * m;
        lon -= (d * Math.sin((heading * Math.PI) / 180) * m) / Math.cos((lat * Math.PI) / 180);
        pts.push({
          position: { lat: Number(lat.toFixed(6)), lon: Number(lon.toFixed(6)) },
          fix_time: new Date(end - i * HISTORY_STEP_S * 1000).toISOString(),
          heading_deg: v === 0 ? null : Math.round(heading),
          speed_mps: Number(v.toFixed(1)),
          accuracy_m: 5,
        });
      }
      this.history.set(u.id, pts.reverse());
    });
  }

  /** Three devices waiting to be bound (a phone, a TAK tablet, a stale one) and two bound ones. */
  private seedDevices(iso: (agoS: number) => string): void {
    const fix = (lat: number, lon: number, agoS: number, heading: number | null): Fix => ({
      position: { lat, lon },
      fix_time: iso(agoS),
      heading_deg: heading,
      speed_mps: heading === null ? 0 : 4.2,
      accuracy_m: 8,
    });
    const dev = (device_id: string, source: DeviceView["source"], name: string | null, last_fix: Fix | null, reports: number, battery_pct: number | null): DeviceRow => ({
      device_id,
      source,
      name,
      unit_id: null,
      callsign: null,
      last_fix,
      reports,
      battery_pct,
    });
    this.devices = [
      dev("862104050123456", "osmand", null, fix(42.5092, 1.5231, 25, 80), 42, 76),
      dev("ANDROID-5f3c9a1e2b7d4c60", "cot", "VIPER 2-1", fix(42.5118, 1.5302, 190, null), 12, null),
      dev("S-LAPTOP-07", "osmand", null, fix(42.5041, 1.5155, 2400, null), 3, 15),
      { ...dev("861234567890123", "osmand", null, null, 0, 88), unit_id: "u-01", callsign: "巡01" },
      { ...dev("ANDROID-a1b2c3d4e5f60718", "cot", "巡02 平板", null, 0, null), unit_id: "u-02", callsign: "巡02" },
    ];
  }

  /** Field mode: the unit is dispatched to the accident, the dispatcher left a note, a receiver runs. */
  private seedField(unitId: string, accident: IncidentDetail): void {
    const u = this.unit(unitId);
    if (u.status === "available" && u.incident_id === null) {
      this.doAssign(accident, unitId, new Date(this.now() - 45_000).toISOString());
      this.log(accident, { kind: "note", text: "报警人在路口东侧等候 / caller waits east of the junction" }, new Date(this.now() - 30_000).toISOString(), "dispatcher");
    }
    this.gps = {
      source: "/dev/ttyUSB0",
      connected: true,
      sentences: 1843,
      fixes: 612,
      skipped: 37,
      last_fix: u.fix ? { ...u.fix } : null,
      error: null,
    };
    // From now on this console writes as the unit.
    this.user = u.callsign;
  }

  /**
   * Field mode: one receiver fix now. En route the unit drives towards its incident at ~10 m/s;
   * otherwise it stands still. The fix is a local position write (positions lane: counted in the
   * outbox while offline) and joins the track.
   */
  gpsTick(): void {
    const id = this.opts.fieldUnit;
    if (!id || !this.gps) return;
    const u = this.unit(id);
    const prev = u.fix;
    if (!prev) return;
    let at = prev.position;
    let heading = prev.heading_deg;
    let speed = 0;
    const target = u.incident_id ? this.get(u.incident_id).summary.location : null;
    if (target && u.status === "en_route") {
      const dist = distanceM(at, target);
      const step = Math.min(dist, 10);
      if (step > 0.5) {
        const f = step / dist;
        heading = Math.round(((Math.atan2(target.lon - at.lon, target.lat - at.lat) * 180) / Math.PI + 360) % 360);
        at = { lat: Number((at.lat + (target.lat - at.lat) * f).toFixed(6)), lon: Number((at.lon + (target.lon - at.lon) * f).toFixed(6)) };
        speed = step;
      }
    }
    const fix: Fix = { position: at, fix_time: this.nowIso(), heading_deg: speed > 0 ? heading : null, speed_mps: speed, accuracy_m: 4 };
    u.fix = fix;
    const h = this.history.get(id) ?? [];
    h.push({ ...fix });
    this.history.set(id, h);
    this.gps = { ...this.gps, sentences: this.gps.sentences + 3, fixes: this.gps.fixes + 1, skipped: this.gps.skipped + (this.gps.fixes % 10 === 0 ? 1 : 0), last_fix: { ...fix } };
    this.changed("positions");
  }

  /** `list_devices`: unbound first (newest report first), then bound ones by callsign. */
  listDevices(): DeviceView[] {
    const t = (d: DeviceRow) => (d.last_fix ? Date.parse(d.last_fix.fix_time) : 0);
    const unbound = this.devices.filter((d) => d.unit_id === null).sort((a, b) => t(b) - t(a));
    const bound = this.devices.filter((d) => d.unit_id !== null).sort((a, b) => (a.callsign ?? "").localeCompare(b.callsign ?? ""));
    return structuredClone([...unbound, ...bound]);
  }

  private bindDevice(a: BindDevice): DeviceView {
    const id = a.device_id.trim();
    if (id === "" || id.length > 128) fail("invalid_input", `device id ${JSON.stringify(a.device_id)}: 1 to 128 characters`);
    let d = this.devices.find((x) => x.device_id === id);
    if (!d) {
      // As the backend: a device may be bound before its first report; unbinding needs one.
      if (a.unit_id === null) fail("not_found", `device ${JSON.stringify(id)} is not bound and has not reported to this console; there is nothing to unbind`);
      d = { device_id: id, source: null, name: null, unit_id: null, callsign: null, last_fix: null, reports: 0, battery_pct: null };
      this.devices.push(d);
    }
    if (a.unit_id === null) {
      d.unit_id = null;
      d.callsign = null;
    } else {
      const u = this.unit(a.unit_id);
      d.unit_id = u.id;
      d.callsign = u.callsign;
    }
    this.changed();
    return structuredClone(d);
  }

  /** The fixes of a unit in a window (inclusive, open bounds), newest MAX kept, oldest first. */
  private trackPoints(q: TrackQuery): { u: UnitView; points: Fix[]; truncated: boolean } {
    const u = this.unit(q.unit_id);
    const from = q.from === null ? -Infinity : Date.parse(q.from);
    const to = q.to === null ? Infinity : Date.parse(q.to);
    if (Number.isNaN(from) || Number.isNaN(to)) fail("invalid_input", `track window ${q.from} – ${q.to} is not a pair of UTC times`);
    if (from > to) fail("invalid_input", `track window starts (${q.from}) after it ends (${q.to})`);
    const all = (this.history.get(u.id) ?? []).filter((f) => {
      const t = Date.parse(f.fix_time);
      return t >= from && t <= to;
    });
    const truncated = all.length > MOCK_MAX_TRACK_POINTS;
    return { u, points: truncated ? all.slice(all.length - MOCK_MAX_TRACK_POINTS) : all, truncated };
  }

  private unitTrack(q: TrackQuery): Track {
    const { u, points, truncated } = this.trackPoints(q);
    return { unit_id: u.id, callsign: u.callsign, points: structuredClone(points), truncated };
  }

  private exportTrack(a: ExportTrack): ExportedTrack {
    const { u, points } = this.trackPoints(a.track);
    if (points.length === 0) fail("invalid_input", `${u.callsign} has no fixes between ${a.track.from ?? "the start"} and ${a.track.to ?? "now"}`);
    // Named by the first and last fix's times, as Console::export_track names it.
    const first = Date.parse((points[0] as Fix).fix_time);
    const last = Date.parse((points[points.length - 1] as Fix).fix_time);
    const out: ExportedTrack = { path: `${MOCK_EXPORT_DIR}/${u.callsign}-${compactUtc(first)}-${compactUtc(last)}.${a.format}`, points: points.length };
    this.exports.push(out);
    return { ...out };
  }

  /** `field_view`: null unless this console is a field unit. */
  fieldView(): FieldView | null {
    const id = this.opts.fieldUnit;
    if (!id) return null;
    const u = this.unit(id);
    const asg = this.activeAssignment(u);
    return {
      unit: structuredClone(u),
      assignment: u.incident_id ? this.detail(u.incident_id) : null,
      acknowledged_at: asg ? (this.acknowledged.get(asg.id) ?? null) : null,
      gps: this.gps ? structuredClone(this.gps) : null,
    };
  }

  private activeAssignment(u: UnitView) {
    return u.incident_id ? this.get(u.incident_id).assignments.find((a) => a.unit_id === u.id && a.released_at === null) : undefined;
  }

  /** `acknowledge_assignment`: the timeline note "<callsign> acknowledged", once per assignment. */
  private acknowledgeAssignment(): FieldView {
    const id = this.opts.fieldUnit;
    if (!id) fail("invalid_input", "acknowledge_assignment is for a field laptop (outpost --unit CALLSIGN)");
    const u = this.unit(id);
    const asg = this.activeAssignment(u);
    if (!asg || !u.incident_id) fail("not_found", `${u.callsign} has no active assignment to acknowledge`);
    if (!this.acknowledged.has(asg.id)) {
      const at = this.nowIso();
      this.acknowledged.set(asg.id, at);
      this.log(this.get(u.incident_id), { kind: "note", text: `${u.callsign} acknowledged` }, at, u.callsign);
      this.changed("notes");
    }
    return this.fieldView() as FieldView;
  }

  /** One conflict of each kind, as another console (王建国, 李明) would have caused them. */
  private seedConflicts(accident: IncidentDetail, fire: IncidentDetail, theft: IncidentDetail, iso: (agoS: number) => string): void {
    const side = (op_id: string, user: string, agoS: number, summary: string, value: unknown, shown: boolean, assignment_id: string | null = null): ConflictSide => ({
      op_id,
      user,
      at: iso(agoS),
      summary,
      value,
      shown,
      assignment_id,
    });
    const ref = (d: IncidentDetail) => ({ incident_id: d.summary.id, incident_number: d.summary.number });
    const localAsg = fire.assignments.find((a) => a.unit_id === "u-03");
    // The store's shape of an assignment side's value.
    const asg = (assignment_id: string, d: IncidentDetail) => ({ assignment_id, incident_id: d.summary.id, unit_id: "u-03" });
    this.conflictList = [
      {
        id: `field:${fire.summary.id}:priority`,
        kind: "field",
        register: "priority",
        ...ref(fire),
        unit_id: null,
        callsign: null,
        sides: [side("op-remote-prio", "王建国", 110, "P2", "P2", false), side("op-local-prio", "dispatcher", 100, "P1", "P1", true)],
      },
      {
        id: "double:u-03",
        kind: "double_assignment",
        register: null,
        incident_id: null,
        incident_number: null,
        unit_id: "u-03",
        callsign: "巡03",
        sides: [
          side("op-local-assign", "dispatcher", 90, `巡03 → #${fire.summary.number}`, asg(localAsg?.id ?? "", fire), true, localAsg?.id ?? null),
          side("op-remote-assign", "王建国", 85, `巡03 → #${accident.summary.number}`, asg("asg-remote-1", accident), false, "asg-remote-1"),
        ],
      },
      {
        id: `closed:${theft.summary.id}:op-local-close:op-remote-edit`,
        kind: "edit_after_close",
        register: null,
        ...ref(theft),
        unit_id: null,
        callsign: null,
        sides: [
          side("op-local-close", "dispatcher", 1200, "closed: report_taken", { disposition: "report_taken", summary: "已登记，转刑侦" }, true),
          side(
            "op-remote-edit",
            "李明",
            1190,
            "description: 嫌疑人骑黑色电动车向北逃离",
            { incident_type: null, priority: null, location: null, address: null, description: "嫌疑人骑黑色电动车向北逃离" },
            false,
          ),
        ],
      },
    ];
    this.parked = [
      {
        op_id: "op-parked-1",
        kind: "assignment.add",
        lane: "critical",
        written_at: iso(540),
        summary: `摩02 → #${accident.summary.number}`,
        reason: "refers to unit u-07, which the server does not have (removed from the roster)",
      },
      {
        op_id: "op-parked-2",
        kind: "note.add",
        lane: "notes",
        written_at: iso(500),
        summary: "备注：现场已拉警戒线",
        reason: "op schema 2 is newer than this server (1); upgrade the server",
      },
    ];
  }

  /** Called after every change with the new revision (the fake `state-changed` event). */
  onChange(f: (revision: number) => void): void {
    this.listeners.push(f);
  }

  private changed(lane: Lane = "critical"): void {
    // A write while the link is down waits in the outbox; once connected it is sent at once.
    const state = this.syncState();
    if (state === "offline" || state === "disabled" || state === "sign_in_required") this.outbox = { ...this.outbox, [lane]: this.outbox[lane] + 1 };
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

  private log(d: IncidentDetail, event: TimelineEvent, at = this.nowIso(), user = this.user): void {
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
      user: this.user,
      settings: { ...this.settings },
      field_unit: this.opts.fieldUnit ?? null,
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
    // Sign-in (issue 6): auth.ts; every other command needs someone signed in, unlocked.
    if ((AUTH_COMMANDS as readonly string[]).includes(cmd)) return this.auth.handle(cmd, args);
    if (!this.auth.signedInNow) fail("signed_out", `sign in first (${this.auth.state})`);
    this.auth.checkWrite(cmd, args);
    // Road closures, road line and facility import (issue 5): closures.ts.
    if ((CLOSURE_COMMANDS as readonly string[]).includes(cmd)) {
      return this.closures.handle({ now: this.now, user: this.user, facilities: this.facilities, changed: () => this.changed() }, cmd, args);
    }
    // Closest units, field route and coverage (issue 5): dispatch.ts.
    if ((DISPATCH_COMMANDS as readonly string[]).includes(cmd)) {
      const host = {
        units: this.units,
        facilities: this.facilities,
        incident: (id: string) => this.get(id),
        fieldUnit: this.opts.fieldUnit ?? null,
        closuresActive: () => this.closures.activeCount(this.now()),
      };
      return handleDispatch(host, cmd, args);
    }
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
        this.changed("notes");
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
        const url = parseServerUrl(s.server_url ?? "");
        if (url === undefined) fail("invalid_input", `server_url ${JSON.stringify(s.server_url)} is not http(s)://host[:port]`);
        // A new server starts the scripted sequence again.
        if (url !== null && url !== this.settings.server_url) this.scriptStart = this.now();
        this.settings = { ...s, server_url: url };
        return { ...this.settings };
      }
      case "sync_status":
        return this.syncStatus();
      case "conflicts":
        return structuredClone(this.conflictList);
      case "resolve_conflict":
        return this.resolve(args as ResolveConflict);
      case "parked_ops":
        return structuredClone(this.parked);
      case "list_devices":
        return this.listDevices();
      case "bind_device":
        return this.bindDevice(args as BindDevice);
      case "unit_track":
        return this.unitTrack(args as TrackQuery);
      case "export_track":
        return this.exportTrack(args as ExportTrack);
      case "field_view":
        return this.fieldView();
      case "acknowledge_assignment":
        return this.acknowledgeAssignment();
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

  /** Where the scripted link is now. */
  syncState(): SyncStatus["state"] {
    if (this.settings.server_url === null) return "disabled";
    const t = this.now() - this.scriptStart;
    if (t < this.script.offlineMs) return "offline";
    // Connected, but the person signed in offline: the server wants a session (the outbox waits).
    const user = this.auth.status().user;
    if (user && !user.online && this.auth.serverUrl !== null) return "sign_in_required";
    if (t < this.script.offlineMs + this.script.syncingMs) return "syncing";
    return "online";
  }

  /** The outbox as the script has drained it: critical first, then notes, then positions. */
  private pendingNow(state: SyncStatus["state"]): LaneCounts {
    if (state === "offline" || state === "disabled" || state === "sign_in_required") return { ...this.outbox };
    if (state === "online") {
      this.outbox = { critical: 0, notes: 0, positions: 0 };
      return { ...this.outbox };
    }
    const frac = Math.min(1, (this.now() - this.scriptStart - this.script.offlineMs) / Math.max(1, this.script.syncingMs));
    const c = this.outbox;
    let sent = Math.floor((c.critical + c.notes + c.positions) * frac);
    const left = (n: number) => {
      const d = Math.min(n, sent);
      sent -= d;
      return n - d;
    };
    return { critical: left(c.critical), notes: left(c.notes), positions: left(c.positions) };
  }

  syncStatus(): SyncStatus {
    const state = this.syncState();
    const lost = new Date(this.scriptStart - this.script.offlineSinceAgoS * 1000).toISOString();
    const connected = state === "syncing" || state === "online";
    return {
      state,
      server_url: this.settings.server_url,
      offline_since: state === "offline" ? lost : null,
      last_sync: connected ? this.nowIso() : state === "offline" ? lost : null,
      pending: this.pendingNow(state),
      parked: this.parked.length,
      conflicts: this.conflictList.length,
      deferred: 0,
      last_error:
        state === "offline" ? `error sending request for url (${this.settings.server_url}/v1/push): connection refused` : null,
    };
  }

  /** `resolve_conflict`: the kept side wins the way the real console writes it. */
  private resolve(a: ResolveConflict): ConflictView[] {
    const c = this.conflictList.find((x) => x.id === a.conflict_id);
    if (!c) fail("not_found", `conflict ${a.conflict_id} is not open (resolved on another console?)`);
    const keep = c.sides.find((s) => s.op_id === a.keep_op_id);
    if (!keep) fail("invalid_input", `op ${a.keep_op_id} is not a side of conflict ${a.conflict_id}`);
    if (c.kind === "field" && c.incident_id) {
      // An informed write of the kept value.
      const d = this.get(c.incident_id);
      if (c.register === "priority") d.summary.priority = keep.value as IncidentDetail["summary"]["priority"];
      this.log(d, { kind: "fields_changed", fields: { incident_type: null, priority: d.summary.priority, location: null, address: null, description: null } });
    } else if (c.kind === "double_assignment" && c.unit_id) {
      const u = this.unit(c.unit_id);
      const incidentOf = (s: ConflictSide) => (s.value as { incident_id?: string } | null)?.incident_id;
      for (const other of c.sides.filter((s) => s !== keep)) {
        const incId = incidentOf(other);
        if (!incId) continue;
        const d = this.get(incId);
        if (u.incident_id === incId) this.doRelease(d, u);
        else this.log(d, { kind: "unit_released", unit_id: u.id, callsign: u.callsign });
      }
      const keptIncident = incidentOf(keep);
      if (keptIncident && u.incident_id !== keptIncident) this.doAssign(this.get(keptIncident), u.id);
    } else if (c.incident_id) {
      this.log(this.get(c.incident_id), { kind: "conflict_resolved", conflict_id: c.id, note: a.note });
    }
    this.conflictList = this.conflictList.filter((x) => x !== c);
    this.changed();
    return structuredClone(this.conflictList);
  }

  /** Test hook: change a unit's status behind the UI's back (as another console would). */
  forceUnitStatus(unitId: string, to: UnitView["status"]): void {
    const u = this.unit(unitId);
    u.status = to;
    u.status_since = this.nowIso();
  }
}
