// @vitest-environment jsdom
// The closest-units ranking and coverage are read again when a closure reaches its expected end
// (no state revision marks that) and every 30 s; fake timers, no real waiting.
import { act, cleanup, render } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { RoadClosureView } from "./bindings";
import { nextClosureEnd } from "./closures";
import { EXPIRY_MARGIN_MS, EXPIRY_REFRESH_MS, useExpiryTick, useThrottledQuery } from "./dispatch";

const NOW = Date.parse("2026-11-29T10:00:00Z");

function view(id: string, endsInS: number | null, lifted = false): RoadClosureView {
  return {
    closure: {
      closure_id: id,
      shape: { type: "line", points: [{ lat: 42.5, lon: 1.52 }, { lat: 42.51, lon: 1.53 }] },
      reason: `reason ${id}`,
      ends_at: endsInS === null ? null : new Date(NOW + endsInS * 1000).toISOString(),
      lifted,
    },
    active: !lifted,
    set_by: "dispatcher",
    set_at: new Date(NOW - 60_000).toISOString(),
    closed_segments: 3,
  };
}

function Probe({ closures, revision, fetch }: { closures: RoadClosureView[]; revision: number; fetch: (k: string) => Promise<number> }) {
  const tick = useExpiryTick(closures);
  useThrottledQuery("incident-1", `${revision}.${tick}`, fetch, 500);
  return null;
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(NOW);
});
afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

const advance = (ms: number) =>
  act(async () => {
    await vi.advanceTimersByTimeAsync(ms);
  });

describe("refetch on closure expiry", () => {
  it("finds the earliest expected end among the active closures", () => {
    const list = [view("a", 120), view("b", 10, true), view("c", null), view("d", 45), view("e", -5)];
    expect(nextClosureEnd(list, NOW)).toBe(NOW + 45_000);
    expect(nextClosureEnd([view("c", null)], NOW)).toBeNull();
    expect(nextClosureEnd(list, NOW + 45_000)).toBe(NOW + 120_000);
  });

  it("reads again just after the earliest end passes and every 30 s, without a revision", async () => {
    expect(EXPIRY_REFRESH_MS).toBe(30_000);
    const fetch = vi.fn(async () => 1);
    // A lifted closure's end and an open-ended closure set no timer.
    const closures = [view("soon", 10), view("later", 100), view("lifted", 5, true), view("open", null)];
    render(<Probe closures={closures} revision={7} fetch={fetch} />);
    await advance(0);
    expect(fetch).toHaveBeenCalledTimes(1);
    await advance(5_000 + EXPIRY_MARGIN_MS);
    expect(fetch).toHaveBeenCalledTimes(1);
    // 10 s + the margin: "soon" has ended.
    await advance(5_000);
    expect(fetch).toHaveBeenCalledTimes(2);
    await advance(30_000 - 10_000 - EXPIRY_MARGIN_MS - 1);
    expect(fetch).toHaveBeenCalledTimes(2);
    await advance(1); // 30 s
    expect(fetch).toHaveBeenCalledTimes(3);
    await advance(30_000); // 60 s
    await advance(30_000); // 90 s
    expect(fetch).toHaveBeenCalledTimes(5);
    // "later" ends at 100 s: read at 100.5 s, before the 120 s tick.
    await advance(10_000 + EXPIRY_MARGIN_MS);
    expect(fetch).toHaveBeenCalledTimes(6);
    await advance(19_500);
    expect(fetch).toHaveBeenCalledTimes(7);
  });

  it("with no closure reads every 30 s only", async () => {
    const fetch = vi.fn(async () => 1);
    render(<Probe closures={[]} revision={1} fetch={fetch} />);
    await advance(29_999);
    expect(fetch).toHaveBeenCalledTimes(1);
    await advance(1);
    expect(fetch).toHaveBeenCalledTimes(2);
  });
});
