import { describe, expect, it } from "vitest";
import type { RoadClosureView } from "./bindings";
import { addPoint, canFinish, checkClosureForm, type Drawing, distinctPoints, formatRemaining, isActiveNow, lineCollapsed, MAX_LINE_POINTS, sortClosures } from "./closures";
import { closureFeatures, drawingFeatures } from "./map/closures";

const NOW = Date.parse("2026-11-29T10:00:00Z");
const H = 3600_000;

function view(id: string, over: Partial<RoadClosureView["closure"]> = {}, setAgoS = 60): RoadClosureView {
  return {
    closure: {
      closure_id: id,
      shape: { type: "line", points: [{ lat: 42.5, lon: 1.52 }, { lat: 42.51, lon: 1.53 }] },
      reason: `reason ${id}`,
      ends_at: null,
      lifted: false,
      ...over,
    },
    active: !over.lifted,
    set_by: "dispatcher",
    set_at: new Date(NOW - setAgoS * 1000).toISOString(),
    closed_segments: 3,
  };
}

describe("closure form", () => {
  it("needs a reason of 1..=500 characters (counted as characters, trimmed)", () => {
    expect(checkClosureForm({ reason: "   ", end: "none", at: "" }, NOW)).toEqual({ ok: false, problem: "closure.needReason" });
    expect(checkClosureForm({ reason: "积".repeat(501), end: "none", at: "" }, NOW)).toEqual({ ok: false, problem: "closure.reasonTooLong" });
    // 500 CJK characters are 1500 bytes but within the limit.
    expect(checkClosureForm({ reason: "积".repeat(500), end: "none", at: "" }, NOW)).toMatchObject({ ok: true, endsAt: null });
    expect(checkClosureForm({ reason: "  积水 0.8 m ", end: "none", at: "" }, NOW)).toEqual({ ok: true, reason: "积水 0.8 m", endsAt: null });
  });

  it("turns +1/+3/+12 h into a UTC end and checks a chosen date and time", () => {
    expect(checkClosureForm({ reason: "x", end: "1", at: "" }, NOW)).toEqual({ ok: true, reason: "x", endsAt: "2026-11-29T11:00:00.000Z" });
    expect(checkClosureForm({ reason: "x", end: "3", at: "" }, NOW)).toMatchObject({ endsAt: "2026-11-29T13:00:00.000Z" });
    expect(checkClosureForm({ reason: "x", end: "12", at: "" }, NOW)).toMatchObject({ endsAt: "2026-11-29T22:00:00.000Z" });
    expect(checkClosureForm({ reason: "x", end: "at", at: "" }, NOW)).toEqual({ ok: false, problem: "closure.needEnd" });
    expect(checkClosureForm({ reason: "x", end: "at", at: "tomorrow" }, NOW)).toEqual({ ok: false, problem: "closure.needEnd" });
    // datetime-local values are local time.
    const future = new Date(NOW + 5 * H);
    const pad = (n: number) => String(n).padStart(2, "0");
    const local = `${future.getFullYear()}-${pad(future.getMonth() + 1)}-${pad(future.getDate())}T${pad(future.getHours())}:${pad(future.getMinutes())}`;
    expect(checkClosureForm({ reason: "x", end: "at", at: local }, NOW)).toEqual({ ok: true, reason: "x", endsAt: future.toISOString() });
    const past = new Date(NOW - H);
    const localPast = `${past.getFullYear()}-${pad(past.getMonth() + 1)}-${pad(past.getDate())}T${pad(past.getHours())}:${pad(past.getMinutes())}`;
    expect(checkClosureForm({ reason: "x", end: "at", at: localPast }, NOW)).toEqual({ ok: false, problem: "closure.endPast" });
  });
});

describe("time left", () => {
  it("says minutes below an hour, whole hours below two days, then days", () => {
    const at = (ms: number) => new Date(NOW + ms).toISOString();
    expect(formatRemaining(null, NOW, "zh")).toBe("直至解除");
    expect(formatRemaining(at(2.5 * H), NOW, "zh")).toBe("剩余 2 小时");
    expect(formatRemaining(at(2.5 * H), NOW, "en")).toBe("2 h left");
    expect(formatRemaining(at(61_000), NOW, "zh")).toBe("剩余 2 分钟");
    expect(formatRemaining(at(20_000), NOW, "en")).toBe("1 min left");
    expect(formatRemaining(at(H), NOW, "en")).toBe("1 h left");
    expect(formatRemaining(at(47 * H), NOW, "en")).toBe("47 h left");
    expect(formatRemaining(at(50 * H), NOW, "zh")).toBe("剩余 2 天");
    expect(formatRemaining(at(-1000), NOW, "zh")).toBe("已到期");
    expect(formatRemaining(at(0), NOW, "en")).toBe("ended");
  });
});

describe("closure list and layer", () => {
  it("puts active closures first and leaves lifted and expired ones off the map", () => {
    const list = [
      view("a", { lifted: true }, 10),
      view("b", { ends_at: new Date(NOW - 1000).toISOString() }, 20),
      view("c", {}, 300),
      view("d", { ends_at: new Date(NOW + H).toISOString(), shape: { type: "area", ring: [{ lat: 42.5, lon: 1.5 }, { lat: 42.5, lon: 1.51 }, { lat: 42.51, lon: 1.51 }] } }, 30),
    ];
    expect(list.map((v) => isActiveNow(v, NOW))).toEqual([false, false, true, true]);
    expect(sortClosures(list, NOW).map((v) => v.closure.closure_id)).toEqual(["d", "c", "a", "b"]);
    const fc = closureFeatures(list, NOW);
    expect(fc.features.map((f) => [f.properties.id, f.properties.kind, f.geometry.type])).toEqual([
      ["c", "line", "LineString"],
      ["d", "area", "Polygon"],
    ]);
    // The ring is closed for GeoJSON: the first corner repeated.
    expect(fc.features[1]!.geometry.coordinates).toEqual([[[1.5, 42.5], [1.51, 42.5], [1.51, 42.51], [1.5, 42.5]]]);
    expect(fc.features[0]!.geometry.coordinates).toEqual([[1.52, 42.5], [1.53, 42.51]]);
  });

  it("draws the clicks, then the snapped line; an area is filled from three corners", () => {
    let d: Drawing = { mode: "line", points: [], line: null, phase: "drawing" };
    d = addPoint(d, { lat: 42.5, lon: 1.5 });
    expect(canFinish(d)).toBe(false);
    d = addPoint(d, { lat: 42.52, lon: 1.52 });
    // Not before the road line for these two clicks is back.
    expect(canFinish(d)).toBe(false);
    expect(drawingFeatures(d).features.map((f) => f.geometry.type)).toEqual(["Point", "Point", "LineString"]);
    d = { ...d, line: [{ lat: 42.5, lon: 1.5 }, { lat: 42.51, lon: 1.51 }, { lat: 42.52, lon: 1.52 }] };
    expect(canFinish(d)).toBe(true);
    expect(drawingFeatures(d).features[2]!.geometry.coordinates).toEqual([[1.5, 42.5], [1.51, 42.51], [1.52, 42.52]]);
    // A third click drops the old line until the new one is read.
    const third = addPoint(d, { lat: 42.53, lon: 1.52 });
    expect(third.line).toBeNull();
    expect(canFinish(third)).toBe(false);
    // Finished: further clicks are ignored.
    const done = { ...d, phase: "form" as const };
    expect(addPoint(done, { lat: 1, lon: 1 })).toBe(done);

    let a: Drawing = { mode: "area", points: [], line: null, phase: "drawing" };
    a = addPoint(addPoint(a, { lat: 42.5, lon: 1.5 }), { lat: 42.5, lon: 1.51 });
    expect(canFinish(a)).toBe(false);
    a = addPoint(a, { lat: 42.51, lon: 1.51 });
    expect(canFinish(a)).toBe(true);
    expect(drawingFeatures(a).features.map((f) => f.geometry.type)).toEqual(["Point", "Point", "Point", "Polygon"]);

    let many: Drawing = { mode: "line", points: [], line: null, phase: "drawing" };
    for (let i = 0; i < MAX_LINE_POINTS + 5; i++) many = addPoint(many, { lat: 42.5, lon: 1.5 + i * 1e-4 });
    expect(many.points.length).toBe(MAX_LINE_POINTS);
  });

  it("a road line that snapped to one place (1 point, or the same point repeated) cannot be finished and says so", () => {
    const P = { lat: 42.5176, lon: 1.5667 };
    const two: Drawing = { mode: "line", points: [P, P], line: null, phase: "drawing" };
    // Not collapsed before the answer is back.
    expect(lineCollapsed(two)).toBe(false);
    for (const line of [[P], [P, { ...P }, P], []]) {
      const d = { ...two, line };
      expect(canFinish(d)).toBe(false);
      expect(lineCollapsed(d)).toBe(true);
    }
    const ok = { ...two, line: [P, { lat: 42.518, lon: 1.5675 }] };
    expect(distinctPoints(ok.line)).toBe(2);
    expect(canFinish(ok)).toBe(true);
    expect(lineCollapsed(ok)).toBe(false);
    // An area never collapses this way.
    expect(lineCollapsed({ mode: "area", points: [P, P, P], line: null, phase: "drawing" })).toBe(false);
  });
});
