// Road closures on the console (issue 5): the list that follows the state revision, the
// drawing a commander makes on the map, the form's checks and the "2 h left" wording.
// The rules are the backend's (crates/outpost-domain/src/road_closure.rs); checking them here
// only saves a round trip, the backend checks again.

import { useCallback, useEffect, useState } from "react";
import { type LatLon, type RoadClosureView, roadClosures } from "./bindings";
import { errorText } from "./errors";
import { type Lang, type MessageKey, t } from "./i18n";

/** `MAX_REASON_CHARS` in crates/outpost-domain/src/road_closure.rs (characters, not bytes). */
export const MAX_REASON_CHARS = 500;
/** `RoadLineQuery` takes 2..=50 points (crates/outpost-app/src/ipc.rs). */
export const MAX_LINE_POINTS = 50;

/** Reason presets offered under the reason field (message keys; the text is filled in). */
export const REASON_PRESETS: MessageKey[] = ["closure.preset.flooding", "closure.preset.collapse", "closure.preset.crash", "closure.preset.police"];

/** Expected end choices: none (until lifted), +1 h, +3 h, +12 h, or a local date and time. */
export type EndChoice = "none" | "1" | "3" | "12" | "at";
export const END_CHOICES: EndChoice[] = ["none", "1", "3", "12", "at"];

/**
 * A closure being drawn. `points` are the clicks (WGS-84); `line` is the road line the
 * backend snapped them to (null until the first answer, or for an area); `phase` is
 * `drawing` while clicks are taken and `form` once finished.
 */
export interface Drawing {
  mode: "line" | "area";
  points: LatLon[];
  line: LatLon[] | null;
  phase: "drawing" | "form";
}

/** True when the closure applies at `nowMs`: not lifted and its expected end still ahead. */
export function isActiveNow(v: RoadClosureView, nowMs: number): boolean {
  if (!v.active || v.closure.lifted) return false;
  const end = v.closure.ends_at;
  return end === null || Date.parse(end) > nowMs;
}

/**
 * The earliest expected end (ms since the epoch) among the closures active at `nowMs`, or
 * null when none has one: the moment rankings and coverage change without a state revision.
 */
export function nextClosureEnd(list: RoadClosureView[], nowMs: number): number | null {
  let next: number | null = null;
  for (const v of list) {
    if (!isActiveNow(v, nowMs) || v.closure.ends_at === null) continue;
    const end = Date.parse(v.closure.ends_at);
    if (Number.isFinite(end) && (next === null || end < next)) next = end;
  }
  return next;
}

/** Active closures first (newest first), then lifted and expired ones (newest first). */
export function sortClosures(list: RoadClosureView[], nowMs: number): RoadClosureView[] {
  return [...list].sort((a, b) => Number(isActiveNow(b, nowMs)) - Number(isActiveNow(a, nowMs)) || b.set_at.localeCompare(a.set_at));
}

/**
 * The time left until `endsAt` (UTC ISO): `剩余 2 小时` / `2 h left` (whole hours, rounded
 * down, from one hour; minutes rounded up below; days from 48 hours); `已到期` / `ended`
 * when past; `直至解除` / `until lifted` when null.
 */
export function formatRemaining(endsAt: string | null, nowMs: number, lang: Lang): string {
  if (endsAt === null) return t(lang, "closure.untilLifted");
  const ms = Date.parse(endsAt);
  if (Number.isNaN(ms)) return endsAt;
  const s = (ms - nowMs) / 1000;
  if (s <= 0) return t(lang, "closure.ended");
  if (s < 3600) return t(lang, "closure.leftMin", { n: Math.max(1, Math.ceil(s / 60)) });
  if (s < 48 * 3600) return t(lang, "closure.leftH", { n: Math.floor(s / 3600) });
  return t(lang, "closure.leftD", { n: Math.floor(s / 86400) });
}

/** What the closure form holds. `at` is an `<input type="datetime-local">` value (local time). */
export interface ClosureForm {
  reason: string;
  end: EndChoice;
  at: string;
}

/** The form checked: the values to send, or the message key of the first problem. */
export type FormCheck = { ok: true; reason: string; endsAt: string | null } | { ok: false; problem: MessageKey };

/** Checks the form at `nowMs`: a reason of 1..=500 characters, an end in the future. */
export function checkClosureForm(f: ClosureForm, nowMs: number): FormCheck {
  const reason = f.reason.trim();
  if (!reason) return { ok: false, problem: "closure.needReason" };
  if ([...reason].length > MAX_REASON_CHARS) return { ok: false, problem: "closure.reasonTooLong" };
  if (f.end === "none") return { ok: true, reason, endsAt: null };
  if (f.end === "at") {
    // datetime-local is local time without a zone; Date parses that form as local.
    const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(f.at) ? new Date(f.at).getTime() : Number.NaN;
    if (Number.isNaN(ms)) return { ok: false, problem: "closure.needEnd" };
    if (ms <= nowMs) return { ok: false, problem: "closure.endPast" };
    return { ok: true, reason, endsAt: new Date(ms).toISOString() };
  }
  return { ok: true, reason, endsAt: new Date(nowMs + Number(f.end) * 3600_000).toISOString() };
}

/**
 * True when the drawing can be finished: an area with 3 corners; a road with 2 clicks and
 * the road line for exactly those clicks, with at least 2 different points (a closure is
 * saved on the snapped line, so one the backend could not snap, or snapped to one place,
 * cannot be saved).
 */
export function canFinish(d: Drawing): boolean {
  if (d.mode === "area") return d.points.length >= 3;
  return d.points.length >= 2 && d.line !== null && distinctPoints(d.line) >= 2;
}

/** How many different points a line has (exact equality: the backend's snapped nodes). */
export function distinctPoints(line: LatLon[]): number {
  return new Set(line.map((p) => `${p.lat},${p.lon}`)).size;
}

/**
 * True when the road line came back but collapsed to one place (identical clicks, or clicks
 * in a lake that snap to the same road point): the drawing cannot be finished, and the panel
 * says why (fresh-user finding I6).
 */
export function lineCollapsed(d: Drawing): boolean {
  return d.mode === "line" && d.points.length >= 2 && d.line !== null && distinctPoints(d.line) < 2;
}

/** The drawing with one more click (ignored once finished or at the 50-point limit); the road line is read again. */
export function addPoint(d: Drawing, at: LatLon): Drawing {
  if (d.phase !== "drawing" || d.points.length >= MAX_LINE_POINTS) return d;
  return { ...d, points: [...d.points, at], line: null };
}

/** The road closures, fetched again at every state revision (closures are ops that sync). */
export function useRoadClosures(revision: number | undefined): { list: RoadClosureView[]; error: string | null; reload: () => void } {
  const [list, setList] = useState<RoadClosureView[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  useEffect(() => {
    let stale = false;
    roadClosures()
      .then((l) => {
        if (stale) return;
        setList(l);
        setError(null);
      })
      .catch((e) => !stale && setError(errorText(e)));
    return () => {
      stale = true;
    };
  }, [revision, tick]);
  return { list, error, reload };
}
