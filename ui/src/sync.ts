// The sync connection as the console shows it: the top-bar indicator's words and colour, the
// conflicts' sides in words, the server URL rule, and SyncStore, which polls `syncStatus`
// (every SYNC_POLL_MS and on `state-changed`) and fetches the conflict and parked lists when
// there are any. Kept outside React so it can be tested without a DOM.

import { listen } from "@tauri-apps/api/event";
import {
  type ConflictSide,
  type ConflictView,
  conflicts as fetchConflicts,
  type IncidentFields,
  type IncidentSummary,
  type LaneCounts,
  type Lane,
  type ParkedOp,
  parkedOps as fetchParked,
  type Register,
  resolveConflict,
  STATE_CHANGED_EVENT,
  type SyncStatus,
  syncStatus as fetchStatus,
  type UnitView,
} from "./bindings";
import { formatAge, secondsSince } from "./format";
import { DICTIONARIES, type Lang, label, locale, type MessageKey, t } from "./i18n";
import { fieldChanges } from "./panels/timeline";

/** How often the indicator asks for the sync status, ms. */
export const SYNC_POLL_MS = 2000;

/** Offline for longer than this (seconds) turns the indicator from amber to red. */
export const OFFLINE_RED_AFTER_S = 300;

/** Lanes in push order (critical first), as the counts are shown. */
export const LANES: Lane[] = ["critical", "notes", "positions"];

/** Sum of the ops waiting in every lane. */
export function pendingTotal(c: LaneCounts): number {
  return c.critical + c.notes + c.positions;
}

/** `紧急 3 · 备注 1 · 位置 140`: the non-empty lanes, in push order; empty when nothing waits. */
export function laneText(lang: Lang, c: LaneCounts): string {
  return LANES.filter((l) => c[l] > 0)
    .map((l) => `${label.lane(lang, l)} ${c[l]}`)
    .join(" · ");
}

const hmFormats = new Map<string, Intl.DateTimeFormat>();
const mdFormats = new Map<string, Intl.DateTimeFormat>();

function cached(cache: Map<string, Intl.DateTimeFormat>, key: string, make: () => Intl.DateTimeFormat) {
  let f = cache.get(key);
  if (!f) {
    f = make();
    cache.set(key, f);
  }
  return f;
}

/**
 * A local wall time for the top bar: `HH:MM` on the same local day as `nowMs`, else with the
 * month and day (`11/28 23:10`), so an overnight outage is not read as a few minutes.
 */
export function formatHm(iso: string, lang: Lang, nowMs: number, timeZone?: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const key = `${lang}|${timeZone ?? ""}`;
  const hm = cached(hmFormats, key, () => new Intl.DateTimeFormat(locale(lang), { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone }));
  const md = cached(mdFormats, key, () => new Intl.DateTimeFormat(locale(lang), { month: "2-digit", day: "2-digit", timeZone }));
  const day = md.format(new Date(ms));
  return day === md.format(new Date(nowMs)) ? hm.format(new Date(ms)) : `${day} ${hm.format(new Date(ms))}`;
}

/** The indicator's colour: grey alone, green online, blue syncing, amber then red offline. */
export type SyncTone = "alone" | "online" | "syncing" | "offline-amber" | "offline-red";

/** What the top-bar indicator shows. */
export interface Indicator {
  tone: SyncTone;
  /** The main words: `在线`, `同步中`, `离线 自 14:05`, `工作在单机模式`. */
  text: string;
  /** Pending ops per lane (`紧急 3 · 备注 1 · 位置 140`), empty when none or alone. */
  lanes: string;
  /** `上次同步 14:02` (or `从未`), empty when alone. */
  lastSync: string;
}

/** The indicator for `s` at `nowMs` (ms since the Unix epoch). */
export function indicator(lang: Lang, s: SyncStatus, nowMs: number, timeZone?: string): Indicator {
  if (s.state === "disabled") return { tone: "alone", text: t(lang, "sync.alone"), lanes: "", lastSync: "" };
  const lastSync = t(lang, "sync.lastSync", { time: s.last_sync ? formatHm(s.last_sync, lang, nowMs, timeZone) : t(lang, "sync.never") });
  const lanes = laneText(lang, s.pending);
  switch (s.state) {
    case "online":
      return { tone: "online", text: t(lang, "sync.online"), lanes, lastSync };
    case "syncing": {
      const n = pendingTotal(s.pending);
      const text = n > 0 ? `${t(lang, "sync.syncing")} · ${t(lang, "sync.pendingN", { n })}` : t(lang, "sync.syncing");
      return { tone: "syncing", text, lanes, lastSync };
    }
    case "offline": {
      const since = s.offline_since;
      const text = since ? t(lang, "sync.offlineSince", { time: formatHm(since, lang, nowMs, timeZone) }) : t(lang, "sync.offline");
      // Without a start time the outage's length is unknown: treat it as long.
      const red = !since || secondsSince(since, nowMs) >= OFFLINE_RED_AFTER_S;
      return { tone: red ? "offline-red" : "offline-amber", text, lanes, lastSync };
    }
    // The server answers but wants an online sign-in (the outbox waits): amber, a person can fix it.
    case "sign_in_required":
      return { tone: "offline-amber", text: t(lang, "sync.signInRequired"), lanes, lastSync };
    // The device was revoked: it syncs no more.
    case "device_revoked":
      return { tone: "offline-red", text: t(lang, "sync.deviceRevoked"), lanes, lastSync };
  }
}

/** `3 分钟前` / `3 min ago`; empty for a missing time. */
export function agoText(lang: Lang, iso: string | null, nowMs: number): string {
  return iso ? t(lang, "sync.ago", { age: formatAge(secondsSince(iso, nowMs), lang) }) : "";
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** True when `key` is a display string (an enum value from the wire that this build knows). */
function known(key: string): key is MessageKey {
  return key in DICTIONARIES.en;
}

/** `结案：已登记 — summary` for a closure value `{disposition, summary}`; null for another shape. */
function closureText(lang: Lang, value: unknown): string | null {
  if (!isObject(value) || typeof value.disposition !== "string") return null;
  const key = `disp.${value.disposition}`;
  const words = t(lang, "conflict.closed", { disposition: known(key) ? t(lang, key) : value.disposition });
  return typeof value.summary === "string" && value.summary.trim() ? `${words} — ${value.summary.trim()}` : words;
}

/** A register value (merge.rs `Write::value`) in words, or null when its shape is not known. */
export function registerValueText(lang: Lang, register: Register, value: unknown): string | null {
  const word = (prefix: string) => {
    const key = `${prefix}.${String(value)}`;
    return typeof value === "string" && known(key) ? t(lang, key) : null;
  };
  switch (register) {
    case "incident_type":
      return word("itype");
    case "priority":
      return word("priority");
    case "unit_status":
      return word("ustatus");
    case "location":
      return isObject(value) && typeof value.lat === "number" && typeof value.lon === "number"
        ? `${value.lat.toFixed(5)}, ${value.lon.toFixed(5)}`
        : null;
    case "address":
    case "description":
      return typeof value === "string" ? value || "—" : null;
    case "closure":
      return closureText(lang, value);
    default:
      return null;
  }
}

const FIELD_KEYS = ["incident_type", "priority", "location", "address", "description"] as const;

/** An `IncidentFields` value (an edit's changes) in words, or null for another shape. */
function fieldsText(lang: Lang, value: unknown): string | null {
  if (!isObject(value) || !FIELD_KEYS.some((k) => k in value)) return null;
  const f = Object.fromEntries(FIELD_KEYS.map((k) => [k, value[k] ?? null])) as IncidentFields;
  return fieldChanges(lang, f) || null;
}

/** What the console knows to name incidents and units in a conflict's sides. */
export interface SideContext {
  incidents: ReadonlyMap<string, IncidentSummary>;
  units: ReadonlyMap<string, UnitView>;
}

/**
 * An assignment value `{assignment_id, incident_id, unit_id}` in words (`巡03 派往 #2026-0002
 * 火警`), or null when it is not one or the incident is not in the live picture.
 */
function assignmentText(lang: Lang, value: unknown, ctx: SideContext | undefined): string | null {
  if (!ctx || !isObject(value) || typeof value.incident_id !== "string" || typeof value.unit_id !== "string") return null;
  const incident = ctx.incidents.get(value.incident_id);
  if (!incident) return null;
  const callsign = ctx.units.get(value.unit_id)?.callsign ?? value.unit_id;
  return t(lang, "conflict.assignedTo", { callsign, number: incident.number, type: label.incidentType(lang, incident.incident_type) });
}

/**
 * One side of a conflict in words, in the console's language: the register value for a field
 * conflict; the assignment for a double assignment; the closing, the edit or the assignment for
 * an edit after close. When the value's shape is unknown (a newer console) or names an incident
 * not in the live picture: the backend's one-line summary.
 */
export function sideText(lang: Lang, c: ConflictView, side: ConflictSide, ctx?: SideContext): string {
  let words: string | null = null;
  if (c.kind === "field" && c.register) words = registerValueText(lang, c.register, side.value);
  else if (c.kind === "double_assignment") words = assignmentText(lang, side.value, ctx);
  else if (c.kind === "edit_after_close") words = closureText(lang, side.value) ?? assignmentText(lang, side.value, ctx) ?? fieldsText(lang, side.value);
  return words ?? side.summary;
}

/** Ids of the incidents and units that open conflicts concern (for the queue and board marks). */
export function conflictedIds(list: ConflictView[]): { incidents: Set<string>; units: Set<string> } {
  const incidents = new Set<string>();
  const units = new Set<string>();
  for (const c of list) {
    if (c.incident_id) incidents.add(c.incident_id);
    if (c.unit_id) units.add(c.unit_id);
  }
  return { incidents, units };
}

/** What a conflict is about: `#2026-0002`, `巡03`, or both. */
export function conflictSubject(c: ConflictView): string {
  return [c.incident_number ? `#${c.incident_number}` : null, c.callsign].filter(Boolean).join(" · ");
}

/** The sentence under a conflict's title that says what happened and what the buttons do. */
export function conflictExplanation(lang: Lang, c: ConflictView): string {
  switch (c.kind) {
    case "field":
      return t(lang, "conflict.explain.field", { field: c.register ? label.register(lang, c.register) : "—" });
    case "double_assignment":
      return t(lang, "conflict.explain.double_assignment", { callsign: c.callsign ?? c.unit_id ?? "—" });
    case "edit_after_close":
      return t(lang, "conflict.explain.edit_after_close");
  }
}

/**
 * The sync server URL rule (Settings): empty (work alone) or `http(s)://host[:port]`, where host
 * is a DNS name, an IPv4 address or a bracketed IPv6 address and port is 1–65535; one trailing
 * `/` is tolerated, nothing else may follow. Returns the value to store (`null` for empty, no
 * trailing `/`), or `undefined` when the text breaks the rule.
 */
export function parseServerUrl(text: string): string | null | undefined {
  const s = text.trim();
  if (s === "") return null;
  const m = /^(https?):\/\/([^/:?#\s[\]]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?\/?$/.exec(s);
  if (!m) return undefined;
  const [, scheme, host, port] = m;
  if (!host) return undefined;
  if (!host.startsWith("[")) {
    const labels = host.split(".");
    if (labels.some((l) => !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l))) return undefined;
    // All-numeric hosts must be a dotted IPv4 address.
    if (labels.every((l) => /^\d+$/.test(l)) && (labels.length !== 4 || labels.some((l) => Number(l) > 255))) return undefined;
  }
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return undefined;
  return `${scheme}://${host.toLowerCase()}${port !== undefined ? `:${Number(port)}` : ""}`;
}

/** Everything the indicator and the sync panel show. */
export interface SyncSnapshot {
  status: SyncStatus | null;
  conflicts: ConflictView[];
  parked: ParkedOp[];
  /** The last failed fetch, cleared by the next good one. */
  error: unknown;
}

/** The backend calls SyncStore makes (injectable for tests). */
export interface SyncApi {
  status: () => Promise<SyncStatus>;
  conflicts: () => Promise<ConflictView[]>;
  parked: () => Promise<ParkedOp[]>;
  resolve: typeof resolveConflict;
}

const BACKEND: SyncApi = { status: fetchStatus, conflicts: fetchConflicts, parked: fetchParked, resolve: resolveConflict };

type Listener = () => void;

/**
 * Holds the newest sync snapshot. `refresh` reads the status, then the conflict and parked
 * lists only when the status counts some (or the lists shown are not yet empty); refreshes
 * asked for while one runs collapse into one more.
 */
export class SyncStore {
  private snap: SyncSnapshot = { status: null, conflicts: [], parked: [], error: null };
  private listeners = new Set<Listener>();
  private inFlight: Promise<void> | null = null;
  private again = false;

  constructor(private readonly api: SyncApi = BACKEND) {}

  get = (): SyncSnapshot => this.snap;

  subscribe = (l: Listener): (() => void) => {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  };

  private set(next: Partial<SyncSnapshot>): void {
    this.snap = { ...this.snap, ...next };
    for (const l of this.listeners) l();
  }

  refresh = (): Promise<void> => {
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    this.inFlight = (async () => {
      do {
        this.again = false;
        try {
          const status = await this.api.status();
          const [conflicts, parked] = await Promise.all([
            status.conflicts > 0 || this.snap.conflicts.length > 0 ? this.api.conflicts() : Promise.resolve([]),
            status.parked > 0 || this.snap.parked.length > 0 ? this.api.parked() : Promise.resolve([]),
          ]);
          this.set({ status, conflicts, parked, error: null });
        } catch (e) {
          this.set({ error: e });
        }
      } while (this.again);
      this.inFlight = null;
    })();
    return this.inFlight;
  };

  /**
   * Keeps one side of a conflict (an op that syncs); the list shown becomes the backend's
   * answer at once. Everything is re-read afterwards even when the backend refused (the
   * conflict may have been resolved on another console meanwhile). Rejects with its error.
   */
  async resolve(conflictId: string, keepOpId: string, note: string): Promise<void> {
    try {
      const left = await this.api.resolve({ conflict_id: conflictId, keep_op_id: keepOpId, note: note.trim() });
      this.set({ conflicts: left });
    } finally {
      await this.refresh();
    }
  }

  /** Polls every `periodMs` and on every STATE_CHANGED_EVENT; returns the stop function. */
  start(periodMs = SYNC_POLL_MS): () => void {
    let stopped = false;
    let unlisten: (() => void) | undefined;
    void this.refresh();
    const timer = setInterval(() => void this.refresh(), periodMs);
    listen(STATE_CHANGED_EVENT, () => void this.refresh())
      .then((u) => (stopped ? u() : (unlisten = u)))
      .catch((e) => this.set({ error: e }));
    return () => {
      stopped = true;
      clearInterval(timer);
      unlisten?.();
    };
  }
}
