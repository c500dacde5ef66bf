// Dispatch intelligence as shown: ETA text, the closest-units ranking split into ranked rows and
// rows with a problem, problem text, the D-key rule, coverage percentages, and the throttled
// reload both the closest-units list and the coverage figure use. Pure (no DOM) except the hook.
// The backend (crates/outpost-app/src/dispatch.rs) ranks; this file only draws what it says.

import { useEffect, useRef, useState } from "react";
import type { ClosestUnits, CoverageView, EtaProblemKind, FieldRoute, UnitEta } from "./bindings";
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

/** Why a unit has no ETA, translated, with the backend's English details after it. */
export function problemText(lang: Lang, kind: EtaProblemKind, detail?: string | null): string {
  const head = t(lang, `eta.problem.${kind}`);
  const d = detail?.trim();
  return d ? `${head} (${d})` : head;
}

/** The ranking split for drawing. */
export interface ClosestRows {
  /** Units with an ETA, fastest first, at most TOP_RANKED, with their 1-based rank. */
  ranked: { rank: number; unit: UnitEta }[];
  /** Further units with an ETA beyond the top five (counted, not listed). */
  more: number;
  /** Units without an ETA (no position, off the roads, cut off), in the backend's order. */
  problems: UnitEta[];
}

/**
 * Splits the backend's candidates (those with an ETA fastest first, then those without) into
 * the top five ranked rows and the rows with a problem. Ranks follow ETA even if the list
 * arrives out of order; ties keep the backend's order.
 */
export function closestRows(c: ClosestUnits | null | undefined): ClosestRows {
  if (!c) return { ranked: [], more: 0, problems: [] };
  const withEta = c.candidates
    .map((unit, i) => ({ unit, i }))
    .filter((x) => x.unit.problem === null && x.unit.eta_s !== null)
    .sort((a, b) => (a.unit.eta_s as number) - (b.unit.eta_s as number) || a.i - b.i)
    .map((x) => x.unit);
  const problems = c.candidates.filter((u) => u.problem !== null || u.eta_s === null);
  return {
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
 * Reads `fetch(key)` while `key` is set, again whenever `revision` changes, at most once per
 * `minGapMs`. A new key clears the old answer at once (no routes of the previous incident);
 * answers for an older key are dropped. Errors go to `onError` and leave the last answer.
 */
export function useThrottledQuery<K extends string, T>(
  key: K | null,
  revision: number | undefined,
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
