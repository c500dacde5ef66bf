import { describe, expect, it } from "vitest";
import type { Fix } from "./bindings";
import { advance, ageTone, bearingDeg, fixAge, fixTimes, fromLocalInput, indexAt, sampleTrack, toLocalInput } from "./positions";

const T0 = Date.parse("2026-11-29T10:00:00Z");
const fix = (lat: number, lon: number, s: number, heading: number | null = null): Fix => ({
  position: { lat, lon },
  fix_time: new Date(T0 + s * 1000).toISOString(),
  heading_deg: heading,
  speed_mps: null,
  accuracy_m: null,
});

describe("position age", () => {
  it("is seconds since the fix time, never negative, null without a fix", () => {
    expect(fixAge(fix(42.5, 1.5, 0), T0 + 12_500)).toBe(12.5);
    // A fix a little ahead of this clock (skew) reads 0 s, not a negative age.
    expect(fixAge(fix(42.5, 1.5, 30), T0)).toBe(0);
    expect(fixAge(null, T0)).toBeNull();
    expect(fixAge({ ...fix(42.5, 1.5, 0), fix_time: "not a time" }, T0)).toBeNull();
  });

  it("is fresh up to half the stale threshold, aging up to it, then stale", () => {
    expect(ageTone(0, 120)).toBe("fresh");
    expect(ageTone(60, 120)).toBe("fresh");
    expect(ageTone(61, 120)).toBe("aging");
    expect(ageTone(120, 120)).toBe("aging");
    expect(ageTone(121, 120)).toBe("stale");
    expect(ageTone(null, 120)).toBe("none");
  });
});

describe("track playback", () => {
  const pts = [fix(42.5, 1.5, 0, 90), fix(42.5, 1.51, 10), fix(42.51, 1.51, 20, 0), fix(42.51, 1.51, 30)];
  const times = fixTimes(pts);

  it("finds the last fix at or before a time", () => {
    expect(indexAt(times, T0 - 1)).toBe(-1);
    expect(indexAt(times, T0)).toBe(0);
    expect(indexAt(times, T0 + 9_999)).toBe(0);
    expect(indexAt(times, T0 + 10_000)).toBe(1);
    expect(indexAt(times, T0 + 99_000)).toBe(3);
    expect(indexAt([], T0)).toBe(-1);
  });

  it("interpolates between fixes and clamps to the ends", () => {
    // Half way between the first two fixes: half way along the segment, the first fix's heading.
    const mid = sampleTrack(pts, times, T0 + 5_000)!;
    expect(mid.index).toBe(0);
    expect(mid.at.lat).toBeCloseTo(42.5, 9);
    expect(mid.at.lon).toBeCloseTo(1.505, 9);
    expect(mid.heading).toBe(90);
    // The second fix has no heading: the segment's bearing (due north, 0°).
    const north = sampleTrack(pts, times, T0 + 15_000)!;
    expect(north.at.lat).toBeCloseTo(42.505, 9);
    expect(north.heading).toBeCloseTo(0, 6);
    expect(sampleTrack(pts, times, T0 - 50_000)!.at).toEqual(pts[0]!.position);
    expect(sampleTrack(pts, times, T0 + 50_000)!.at).toEqual(pts[3]!.position);
    expect(sampleTrack(pts, times, T0 + 50_000)!.index).toBe(3);
    expect(sampleTrack([], [], T0)).toBeNull();
  });

  it("moves the playhead speed times real time and stops at the end", () => {
    expect(advance(T0, 100, 60, T0 + 30_000)).toBe(T0 + 6_000);
    expect(advance(T0, 1000, 1, T0 + 30_000)).toBe(T0 + 1_000);
    expect(advance(T0 + 29_000, 1000, 60, T0 + 30_000)).toBe(T0 + 30_000);
  });

  it("computes bearings clockwise from north", () => {
    expect(bearingDeg({ lat: 0, lon: 0 }, { lat: 1, lon: 0 })).toBeCloseTo(0, 6);
    expect(bearingDeg({ lat: 0, lon: 0 }, { lat: 0, lon: 1 })).toBeCloseTo(90, 6);
    expect(bearingDeg({ lat: 0, lon: 0 }, { lat: -1, lon: 0 })).toBeCloseTo(180, 6);
    expect(bearingDeg({ lat: 0, lon: 0 }, { lat: 0, lon: -1 })).toBeCloseTo(270, 6);
  });

  it("round-trips datetime-local values in local time; empty is an open bound", () => {
    const ms = new Date(2026, 10, 29, 8, 5).getTime();
    expect(toLocalInput(ms)).toBe("2026-11-29T08:05");
    expect(fromLocalInput("2026-11-29T08:05")).toBe(ms);
    expect(fromLocalInput("")).toBeNull();
    expect(fromLocalInput("yesterday")).toBeNull();
  });
});
