// Position age and track playback arithmetic (SYNC.md principle 9: every position shown
// carries its age; the latest position is the newest fix time). Pure functions, no DOM.

import type { Fix, LatLon } from "./bindings";

/** How fresh a fix looks: `fresh` up to half the stale threshold, `aging` up to it, then `stale`. */
export type AgeTone = "fresh" | "aging" | "stale" | "none";

/** Seconds from a fix's time to `nowMs`, or null without a (parsable) fix. Never negative. */
export function fixAge(fix: Fix | null | undefined, nowMs: number): number | null {
  if (!fix) return null;
  const t = Date.parse(fix.fix_time);
  if (Number.isNaN(t)) return null;
  return Math.max(0, (nowMs - t) / 1000);
}

/**
 * The colour class of an age against `Settings.stale_after_s`: stale beyond the threshold (as
 * the map and the board already draw it), aging past half of it, `none` without a fix.
 */
export function ageTone(ageS: number | null, staleAfterS: number): AgeTone {
  if (ageS === null) return "none";
  if (ageS > staleAfterS) return "stale";
  if (ageS > staleAfterS / 2) return "aging";
  return "fresh";
}

/** Where a track was at `tMs`, interpolated linearly between the fixes around it. */
export interface TrackSample {
  at: LatLon;
  /** The fix at or before `tMs` (index into the points), the one whose age is shown. */
  index: number;
  /** Course over ground, degrees, from that fix or from the segment when it has none. */
  heading: number | null;
}

/** Fix times in ms, once per track (points are oldest first, as `unit_track` returns them). */
export function fixTimes(points: Fix[]): number[] {
  return points.map((p) => Date.parse(p.fix_time));
}

/** Index of the last time ≤ `tMs` (binary search), or -1 before the first. */
export function indexAt(times: number[], tMs: number): number {
  let lo = 0;
  let hi = times.length - 1;
  let ans = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((times[mid] as number) <= tMs) {
      ans = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return ans;
}

/** Initial bearing from `a` to `b`, degrees clockwise from true north, 0..360. */
export function bearingDeg(a: LatLon, b: LatLon): number {
  const rad = Math.PI / 180;
  const y = Math.sin((b.lon - a.lon) * rad) * Math.cos(b.lat * rad);
  const x = Math.cos(a.lat * rad) * Math.sin(b.lat * rad) - Math.sin(a.lat * rad) * Math.cos(b.lat * rad) * Math.cos((b.lon - a.lon) * rad);
  return ((Math.atan2(y, x) / rad) % 360 + 360) % 360;
}

/**
 * The playhead's position at `tMs`: before the first fix it sits on the first, after the last
 * on the last, in between it moves in a straight line (fixes are seconds apart; a straight line
 * between them is what a dispatcher expects to see, not a road-snapped guess).
 */
export function sampleTrack(points: Fix[], times: number[], tMs: number): TrackSample | null {
  if (points.length === 0) return null;
  const i = indexAt(times, tMs);
  if (i < 0) {
    const p = points[0] as Fix;
    return { at: p.position, index: 0, heading: p.heading_deg };
  }
  const p = points[i] as Fix;
  const next = points[i + 1];
  if (!next || (times[i + 1] as number) === (times[i] as number)) return { at: p.position, index: i, heading: p.heading_deg };
  const f = Math.min(1, Math.max(0, (tMs - (times[i] as number)) / ((times[i + 1] as number) - (times[i] as number))));
  const at = { lat: p.position.lat + (next.position.lat - p.position.lat) * f, lon: p.position.lon + (next.position.lon - p.position.lon) * f };
  const moved = p.position.lat !== next.position.lat || p.position.lon !== next.position.lon;
  return { at, index: i, heading: p.heading_deg ?? (moved ? bearingDeg(p.position, next.position) : null) };
}

/** Playback speeds offered (times real time). */
export const PLAYBACK_SPEEDS = [1, 10, 60] as const;
export type PlaybackSpeed = (typeof PLAYBACK_SPEEDS)[number];

/** Time windows offered for a track, in seconds back from now; `custom` takes two times. */
export const TRACK_WINDOWS = [900, 3600, 14400, 86400] as const;

/** The next playhead after `elapsedMs` of real time at `speed`, clamped to the track's end. */
export function advance(playheadMs: number, elapsedMs: number, speed: number, endMs: number): number {
  return Math.min(endMs, playheadMs + elapsedMs * speed);
}

/**
 * `<input type="datetime-local">` value (local time, minutes) for an instant, and back.
 * An empty or unparsable value is null (an open bound).
 */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
export function fromLocalInput(v: string): number | null {
  if (!v) return null;
  const ms = new Date(v).getTime();
  return Number.isNaN(ms) ? null : ms;
}
