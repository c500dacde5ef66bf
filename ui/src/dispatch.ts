// Dispatch intelligence as shown: ETA text, the closest-units ranking split into ranked rows and
// rows with a problem, problem text, the D-key rule, coverage percentages, and the throttled
// reload both the closest-units list and the coverage figure use. Pure (no DOM) except the hook.
// The backend (crates/outpost-app/src/dispatch.rs) ranks; this file only draws what it says.

import { useEffect, useRef, useState } from "react";
import type { ClosestUnits, CoverageView, EtaProblemKind, FieldRoute, RoadClosureView, UnitEta } from "./bindings";
import { nextClosureEnd } from "./closures";
import { type Lang, t } from "./i18n";

/** How many ranked units the panel and the map show (the backend sends routes for these). */
export const TOP_RANKED = 5;
/** Least time between two closest-unit rankings for one incident, ms (at most 2 a second). */
export const CLOSEST_MIN_GAP_MS = 500;
/** Least time between two coverage computations, ms. */
export const COVERAGE_MIN_GAP_MS = 3000;
/** Least time between two field-route reads, ms. */
export const FIELD_ROUTE_MIN_GAP_MS = 1000;
/**
 * The closest-units ranking and coverage are read again this often, ms, even without a state
 * revision (a closure reaching its expected end changes them and writes no op).
 */
export const EXPIRY_REFRESH_MS = 30_000;
/** How long after a closure's expected end the refresh runs, ms (the backend's clock may lag). */
export const EXPIRY_MARGIN_MS = 500;

/**
 * A driving time: `3:20` / `1:02:05` in English, `3 分 20 秒` / `45 秒` / `1 小时 2 分 5 秒` in
 * Chinese. Rounded to whole seconds; negative or non-finite input shows as `—`.
 */
export function formatEta(seconds: number, lang: Lang): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n: number) => (lang === "en" ? String(n).padStart(2, "0") : String(n));
  if (h > 0) return t(lang, "eta.hms", { h, m: pad(m), s: pad(s) });
  if (m > 0) return t(lang, "eta.ms", { m, s: pad(s) });
  return t(lang, "eta.s", { s: pad(s) });
}

/** A compact ETA for map labels, `m:ss` (or `h:mm:ss`) in every language. */
export function formatEtaShort(seconds: number): string {
  return formatEta(seconds, "en");
}

/** Metres as kilometres with one decimal, e.g. `2.4` (for `detail.distanceKm`). */
export function formatKm(metres: number): string {
  return (Math.max(0, metres) / 1000).toFixed(1);
}

/** A distance in metres as `850 m` or `1.2 km` (both languages). */
export function formatDistance(metres: number): string {
  const m = Math.max(0, metres);
  return m < 1000 ? `${Math.round(m)} m` : `${formatKm(m)} km`;
}

/**
 * The distance to the nearest drivable road in a routing message, metres: routing.rs says
 * "no drivable road within 500 m of 42.5,1.5 (nearest 1234 m)"; "1,234 m from the nearest
 * drivable road" is read too. Null when the message carries none.
 */
export function nearestRoadM(detail: string | null | undefined): number | null {
  if (!detail) return null;
  const m = /nearest\s+([\d,]+(?:\.\d+)?)\s*m\b/.exec(detail) ?? /([\d,]+(?:\.\d+)?)\s*m from the nearest/.exec(detail);
  if (!m?.[1]) return null;
  const n = Number(m[1].replace(/,/g, ""));
  return Number.isFinite(n) ? n : null;
}

/**
 * The closure reasons in a "cut off" message: dispatch.rs sends "road closures cut every
 * route to the incident: 积水 0.8 m; bridge collapsed" (the reasons as the dispatcher typed
 * them, joined by "; "), or no reasons after no colon.
 */
export function closureReasons(detail: string | null | undefined): string[] {
  const d = detail?.trim();
  if (!d) return [];
  const i = d.indexOf(": ");
  if (i < 0) return [];
  return d
    .slice(i + 2)
    .split("; ")
    .map((r) => r.trim())
    .filter((r) => r !== "");
}

/**
 * Why a unit has no ETA, translated, with only the data a commander needs from the backend's
 * English detail: the closure reasons for `closed_off`, the distance to the nearest road for
 * `no_road`. The full English detail is for a tooltip (`problemTitle`), never inline.
 */
export function problemText(lang: Lang, kind: EtaProblemKind, detail?: string | null): string {
  const head = t(lang, `eta.problem.${kind}`);
  const sep = t(lang, "eta.detailSep");
  if (kind === "closed_off") {
    const reasons = closureReasons(detail);
    return reasons.length > 0 ? `${head}${sep}${reasons.join(t(lang, "eta.reasonSep"))}` : head;
  }
  if (kind === "no_road") {
    const m = nearestRoadM(detail);
    return m !== null ? `${head}${sep}${t(lang, "eta.nearestRoad", { dist: formatDistance(m) })}` : head;
  }
  return head;
}

/** The backend's full detail (English) for a title tooltip, or undefined. */
export function problemTitle(detail?: string | null): string | undefined {
  const d = detail?.trim();
  return d ? d : undefined;
}

/**
 * Why no road ranking is possible, translated from `ClosestUnits.unavailable` (dispatch.rs:
 * "the incident is off the road network: … (nearest N m); units are listed by …", "no area
 * pack is open, …", "the area pack has no drivable road network; …", "cannot read the pack's
 * road network: …"). The English text is for a tooltip.
 */
export function unavailableText(lang: Lang, reason: string): string {
  return t(lang, "eta.unavailable", { reason: routingWhy(lang, reason) });
}

/** The cause in a routing-unavailable message (closest units or coverage), translated. */
export function routingWhy(lang: Lang, reason: string): string {
  if (reason.includes("off the road network")) {
    const m = nearestRoadM(reason);
    return m !== null ? t(lang, "eta.why.offRoadNear", { dist: formatDistance(m) }) : t(lang, "eta.why.offRoad");
  }
  if (reason.includes("no area pack")) return t(lang, "eta.why.noPack");
  if (reason.includes("no drivable road network")) return t(lang, "eta.why.noRoads");
  return t(lang, "eta.why.other");
}

/** The ranking split for drawing. */
export interface ClosestRows {
  /**
   * `"road"`: ranked by road ETA. `"straight"`: routing is unavailable
   * (`ClosestUnits.unavailable`), the rows are ordered by straight-line distance.
   */
  by: "road" | "straight";
  /**
   * Units with an ETA, fastest first (or, by straight line, units with a position, nearest
   * first), at most TOP_RANKED, with their 1-based rank.
   */
  ranked: { rank: number; unit: UnitEta }[];
  /** Further such units beyond the top five (counted, not listed). */
  more: number;
  /** Units without an ETA (no position, off the roads, cut off), in the backend's order. */
  problems: UnitEta[];
}

/**
 * Splits the backend's candidates (those with an ETA fastest first, then those without) into
 * the top five ranked rows and the rows with a problem. Ranks follow ETA even if the list
 * arrives out of order; ties keep the backend's order. When routing is unavailable the units
 * with a position and no problem are ranked by `straight_m` instead (dispatch.rs sends them
 * without an ETA, nearest first), so D and the buttons still dispatch the nearest.
 */
export function closestRows(c: ClosestUnits | null | undefined): ClosestRows {
  if (!c) return { by: "road", ranked: [], more: 0, problems: [] };
  if (c.unavailable !== null) {
    const near = c.candidates
      .map((unit, i) => ({ unit, i }))
      .filter((x) => x.unit.problem === null && x.unit.straight_m !== null)
      .sort((a, b) => (a.unit.straight_m as number) - (b.unit.straight_m as number) || a.i - b.i)
      .map((x) => x.unit);
    return {
      by: "straight",
      ranked: near.slice(0, TOP_RANKED).map((unit, i) => ({ rank: i + 1, unit })),
      more: Math.max(0, near.length - TOP_RANKED),
      problems: c.candidates.filter((u) => u.problem !== null || u.straight_m === null),
    };
  }
  const withEta = c.candidates
    .map((unit, i) => ({ unit, i }))
    .filter((x) => x.unit.problem === null && x.unit.eta_s !== null)
    .sort((a, b) => (a.unit.eta_s as number) - (b.unit.eta_s as number) || a.i - b.i)
    .map((x) => x.unit);
  const problems = c.candidates.filter((u) => u.problem !== null || u.eta_s === null);
  return {
    by: "road",
    ranked: withEta.slice(0, TOP_RANKED).map((unit, i) => ({ rank: i + 1, unit })),
    more: Math.max(0, withEta.length - TOP_RANKED),
    problems,
  };
}

/** The unit D dispatches: the first ranked one not already dispatched from this list. */
export function firstDispatchable(c: ClosestUnits | null | undefined, skip: ReadonlySet<string> = new Set()): UnitEta | null {
  return closestRows(c).ranked.find((r) => !skip.has(r.unit.unit_id))?.unit ?? null;
}

/** The part of a keyboard event the D rule looks at. */
export interface KeyLike {
  key: string;
  target: EventTarget | null;
  ctrlKey?: boolean;
  metaKey?: boolean;
  altKey?: boolean;
  repeat?: boolean;
}

/** True when the focus is somewhere typing goes (input, textarea, select, contenteditable). */
export function isTypingTarget(target: EventTarget | null): boolean {
  if (typeof HTMLElement === "undefined" || !(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}

/** True for a plain D (either case) pressed outside a text field, not held down, no modifiers. */
export function isDispatchKey(e: KeyLike): boolean {
  if (e.key !== "d" && e.key !== "D") return false;
  if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return false;
  return !isTypingTarget(e.target);
}

/**
 * Coverage shares (0..=1) as whole percentages for 1, 3 and 5 minutes: by default the live
 * figure (`share`, available units only); `"with_facilities"` the layer's share (stations and
 * posts too).
 */
export function coveragePercents(
  c: CoverageView | null | undefined,
  which: "units" | "with_facilities" = "units",
): [number, number, number] | null {
  if (!c || c.unavailable !== null) return null;
  const s = which === "units" ? c.share : c.share_with_facilities;
  if (!s || s.length < 3) return null;
  const pct = (x: number | undefined) => Math.round(Math.min(1, Math.max(0, x ?? 0)) * 100);
  return [pct(s[0]), pct(s[1]), pct(s[2])];
}

/** The field laptop's route line in words: ETA and road distance, or why there is none. */
export function fieldRouteText(lang: Lang, r: FieldRoute | null | undefined): string | null {
  if (!r) return null;
  if (r.route) return t(lang, "eta.fieldEta", { eta: formatEta(r.route.eta_s, lang), km: formatKm(r.route.distance_m) });
  if (r.problem) return t(lang, "eta.noRoute", { problem: problemText(lang, r.problem, r.problem_detail) });
  return null;
}

/**
 * Runs `load` on `request()`, never two at once and never sooner than `minGapMs` after the
 * previous start: requests in between collapse into one run at the earliest allowed time.
 * `cancel()` drops a pending run (a running one still finishes; its result is the caller's
 * to ignore). Timer functions are injectable for tests.
 */
export class Throttle {
  private last = -Infinity;
  private running = false;
  private pending = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly load: () => Promise<void>,
    private readonly minGapMs: number,
    private readonly clock: () => number = () => Date.now(),
    private readonly schedule: (f: () => void, ms: number) => ReturnType<typeof setTimeout> = (f, ms) => setTimeout(f, ms),
    private readonly unschedule: (h: ReturnType<typeof setTimeout>) => void = (h) => clearTimeout(h),
  ) {}

  request = (): void => {
    this.pending = true;
    this.pump();
  };

  cancel = (): void => {
    this.pending = false;
    if (this.timer !== null) this.unschedule(this.timer);
    this.timer = null;
  };

  private pump(): void {
    if (!this.pending || this.running || this.timer !== null) return;
    const wait = this.last + this.minGapMs - this.clock();
    if (wait > 0) {
      this.timer = this.schedule(() => {
        this.timer = null;
        this.pump();
      }, wait);
      return;
    }
    this.pending = false;
    this.running = true;
    this.last = this.clock();
    void this.load()
      .catch(() => {})
      .finally(() => {
        this.running = false;
        this.pump();
      });
  }
}

/**
 * A counter for refetching what a closure's expiry changes: it goes up every `periodMs` and
 * `EXPIRY_MARGIN_MS` after the earliest active closure's `ends_at` (one timer to that moment,
 * set again after each tick and whenever the list changes). Pass it with the state revision
 * to `useThrottledQuery`; the throttle keeps the reads cheap.
 */
export function useExpiryTick(closures: RoadClosureView[], periodMs: number = EXPIRY_REFRESH_MS): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const id = setInterval(() => setTick((n) => n + 1), periodMs);
    return () => clearInterval(id);
  }, [periodMs]);
  useEffect(() => {
    const now = Date.now();
    const end = nextClosureEnd(closures, now);
    if (end === null) return;
    const wait = end - now + EXPIRY_MARGIN_MS;
    // Later than the next periodic tick: that tick sets this timer again, closer.
    if (wait > periodMs) return;
    const id = setTimeout(() => setTick((n) => n + 1), Math.max(0, wait));
    return () => clearTimeout(id);
  }, [closures, tick, periodMs]);
  return tick;
}

/**
 * Reads `fetch(key)` while `key` is set, again whenever `revision` changes, at most once per
 * `minGapMs`. A new key clears the old answer at once (no routes of the previous incident);
 * answers for an older key are dropped. Errors go to `onError` and leave the last answer.
 */
export function useThrottledQuery<K extends string, T>(
  key: K | null,
  revision: number | string | undefined,
  fetch: (key: K) => Promise<T>,
  minGapMs: number,
  onError?: (e: unknown) => void,
): T | null {
  const [data, setData] = useState<{ key: K; value: T } | null>(null);
  const keyRef = useRef(key);
  keyRef.current = key;
  const fetchRef = useRef(fetch);
  fetchRef.current = fetch;
  const errRef = useRef(onError);
  errRef.current = onError;
  const throttle = useRef<Throttle | null>(null);
  if (throttle.current === null) {
    throttle.current = new Throttle(async () => {
      const k = keyRef.current;
      if (k === null) return;
      try {
        const value = await fetchRef.current(k);
        if (keyRef.current === k) setData({ key: k, value });
      } catch (e) {
        if (keyRef.current === k) errRef.current?.(e);
      }
    }, minGapMs);
  }
  useEffect(() => {
    if (key === null) {
      throttle.current?.cancel();
      return;
    }
    throttle.current?.request();
  }, [key, revision]);
  useEffect(() => () => throttle.current?.cancel(), []);
  return data && data.key === key ? data.value : null;
}
