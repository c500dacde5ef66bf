// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Track, TrackQuery } from "../bindings";
import type { TrackOverlay } from "../map/features";
import { GpsLine } from "../FieldConsole";
import { MockBackend } from "../mock/backend";
import { DevicesPanel, type DevicesPanelProps } from "./DevicesPanel";
import { FixAge } from "./FixAge";
import { PlaybackPanel, type PlaybackPanelProps } from "./PlaybackPanel";

const NOW = Date.parse("2026-11-29T10:00:00Z");
afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

function fake() {
  return new MockBackend({ now: () => NOW });
}

describe("FixAge", () => {
  it("shows the age with its tone and the fix time in the tooltip", () => {
    const fix = { position: { lat: 42.5, lon: 1.5 }, fix_time: "2026-11-29T09:59:48Z", heading_deg: null, speed_mps: null, accuracy_m: null };
    const { container, rerender } = render(<FixAge lang="en" now={NOW} fix={fix} staleAfterS={120} />);
    const el = container.querySelector<HTMLElement>("[data-fix-age]")!;
    expect(el.textContent).toBe("12 s");
    expect(el.dataset.ageTone).toBe("fresh");
    expect(el.hasAttribute("data-stale")).toBe(false);
    expect(el.title).toMatch(/^Fix at 29\/11\/2026, \d{2}:59:48 \(12 s ago\)$/);
    rerender(<FixAge lang="en" now={NOW + 180_000} fix={fix} staleAfterS={120} />);
    expect(el.textContent).toBe("3 min");
    expect(el.dataset.ageTone).toBe("stale");
    expect(el.hasAttribute("data-stale")).toBe(true);
    expect(el.title).toMatch(/stale fix$/);
    rerender(<FixAge lang="zh" now={NOW} fix={null} staleAfterS={120} />);
    expect(container.querySelector("[data-fix-age]")?.textContent).toBe("无定位");
  });
});

describe("DevicesPanel", () => {
  function props(over: Partial<DevicesPanelProps> = {}): DevicesPanelProps {
    const m = fake();
    return {
      lang: "en",
      now: NOW,
      devices: m.listDevices(),
      error: null,
      units: m.consoleState().units,
      staleAfterS: 120,
      busy: false,
      onBind: vi.fn(),
      onShow: vi.fn(),
      onOpenUnit: vi.fn(),
      onDismiss: vi.fn(),
      ...over,
    };
  }

  it("lists unbound devices with source, name, last fix and age, battery and reports; binds one", () => {
    const p = props();
    const { container } = render(<DevicesPanel {...p} />);
    const rows = [...container.querySelectorAll<HTMLElement>("#unbound-devices [data-device-id]")];
    expect(rows.map((r) => r.dataset.deviceId)).toEqual(["862104050123456", "ANDROID-5f3c9a1e2b7d4c60", "S-LAPTOP-07"]);
    const tak = rows[1]!;
    expect(tak.textContent).toContain("VIPER 2-1");
    expect(tak.textContent).toContain("CoT (TAK)");
    expect(tak.querySelector("[data-device-fix]")?.textContent).toContain("42.51180, 1.53020");
    expect(tak.querySelector("[data-fix-age]")?.textContent).toBe("3 min");
    expect(rows[0]!.querySelector("[data-fix-age]")?.textContent).toBe("25 s");
    expect(rows[0]!.querySelector("[data-battery]")?.textContent).toBe("Battery 76%");
    expect(rows[2]!.querySelector(".battery-low")).not.toBeNull();
    expect(rows[2]!.querySelector("[data-device-reports]")?.textContent).toBe("3");
    // Bind is disabled until a unit is chosen.
    const bind = rows[0]!.querySelector<HTMLButtonElement>("[data-bind]")!;
    expect(bind.disabled).toBe(true);
    fireEvent.change(rows[0]!.querySelector("select")!, { target: { value: "u-04" } });
    fireEvent.click(bind);
    expect(p.onBind).toHaveBeenCalledWith("862104050123456", "u-04");
    fireEvent.click(rows[0]!.querySelector("[data-device-fix] button")!);
    expect(p.onShow).toHaveBeenCalledWith({ lat: 42.5092, lon: 1.5231 });
  });

  it("lists bound devices with their unit's fix age and unbinds", () => {
    const p = props();
    const { container } = render(<DevicesPanel {...p} />);
    const bound = [...container.querySelectorAll<HTMLElement>("#bound-devices [data-device-id]")];
    expect(bound.map((b) => b.dataset.boundUnit)).toEqual(["u-01", "u-02"]);
    expect(bound[0]!.textContent).toContain("巡01");
    // 巡01's own fix is 5 s old.
    expect(bound[0]!.querySelector("[data-fix-age]")?.textContent).toBe("5 s");
    fireEvent.click(bound[1]!.querySelector("[data-unbind]")!);
    expect(p.onBind).toHaveBeenCalledWith("ANDROID-a1b2c3d4e5f60718", null);
  });

  it("registers a device by its id before its first report", () => {
    const p = props();
    const { container } = render(<DevicesPanel {...p} />);
    const form = container.querySelector<HTMLFormElement>("#register-device")!;
    const submit = form.querySelector<HTMLButtonElement>("button[type=submit]")!;
    expect(submit.disabled).toBe(true);
    fireEvent.change(form.querySelector("#register-device-id")!, { target: { value: "  866123450000042 " } });
    expect(submit.disabled).toBe(true);
    fireEvent.change(form.querySelector("#register-device-unit")!, { target: { value: "u-03" } });
    fireEvent.click(submit);
    expect(p.onBind).toHaveBeenCalledWith("866123450000042", "u-03");
    expect(form.querySelector<HTMLInputElement>("#register-device-id")!.value).toBe("");
  });

  it("the mock binds an id it has never heard of, and refuses to unbind one", () => {
    const m = fake();
    const v = m.handle("bind_device", { args: { device_id: " new-phone ", unit_id: "u-03" } }) as { device_id: string; unit_id: string; reports: number };
    expect([v.device_id, v.unit_id, v.reports]).toEqual(["new-phone", "u-03", 0]);
    expect(m.listDevices().some((d) => d.device_id === "new-phone" && d.unit_id === "u-03")).toBe(true);
    expect(() => m.handle("bind_device", { args: { device_id: "ghost", unit_id: null } })).toThrow(/nothing to unbind/);
  });

  it("says so when nothing waits and when the list cannot be read", () => {
    const { container } = render(<DevicesPanel {...props({ devices: [], error: "storage: disk full" })} />);
    expect(container.querySelector("#no-unbound")?.textContent).toBe("No unbound devices");
    expect(container.querySelector("#devices-error")?.textContent).toBe("The device list could not be read: storage: disk full");
  });
});

describe("PlaybackPanel", () => {
  function setup(over: Partial<PlaybackPanelProps> = {}) {
    const m = fake();
    const overlays: (TrackOverlay | null)[] = [];
    const follows: unknown[] = [];
    const loadTrack = vi.fn(async (q: TrackQuery) => m.handle("unit_track", { args: q }) as Track);
    const p: PlaybackPanelProps = {
      lang: "en",
      now: NOW,
      units: m.consoleState().units,
      initialUnitId: "u-01",
      staleAfterS: 120,
      busy: false,
      onExport: vi.fn(async (q, format) => ({ path: `/x/${q.unit_id}.${format}`, points: 7 })),
      onOverlay: (o) => overlays.push(o),
      onFollow: (f) => follows.push(f),
      onDismiss: vi.fn(),
      loadTrack,
      ...over,
    };
    return { m, p, overlays, follows, loadTrack };
  }

  it("loads the last hour, draws the line, moves the playhead with the slider and follows it", async () => {
    const { m, p, overlays, follows, loadTrack } = setup();
    const { container } = render(<PlaybackPanel {...p} />);
    await waitFor(() => expect(container.querySelector("#track-summary")).not.toBeNull());
    expect(loadTrack).toHaveBeenCalledWith({ unit_id: "u-01", from: "2026-11-29T09:00:00.000Z", to: null });
    // 09:00:05 … 09:59:55 every 10 s.
    expect(container.querySelector("#track-summary")?.getAttribute("data-track-points")).toBe("360");
    const hist = m.history.get("u-01")!;
    // The overlay follows the loaded track in an effect: wait for it, not just the summary.
    await waitFor(() => {
      expect(overlays.at(-1)?.line).toHaveLength(360);
      expect(overlays.at(-1)?.head).not.toBeNull();
    });
    const last = overlays.at(-1)!;
    expect(last.line).toHaveLength(360);
    expect(last.line[0]).toEqual(hist[hist.length - 360]!.position);
    expect(last.head?.at).toEqual(hist[hist.length - 360]!.position);
    expect(last.head?.label).toMatch(/^巡01 \d{2}:00:05$/);
    // The slider's end is the latest fix: 巡01's position now, followed by the map.
    const slider = container.querySelector<HTMLInputElement>("#track-slider")!;
    expect(slider.max).toBe(String(3590));
    fireEvent.change(slider, { target: { value: "3590" } });
    expect(container.querySelector("#track-fix")?.getAttribute("data-fix-time")).toBe("2026-11-29T09:59:55.000Z");
    expect(overlays.at(-1)?.head?.at).toEqual({ lat: 42.5071, lon: 1.5228 });
    expect(follows.at(-1)).toEqual({ lat: 42.5071, lon: 1.5228 });
    // Half way between two fixes the playhead is half way between them.
    fireEvent.change(slider, { target: { value: "5" } });
    const a = hist[hist.length - 360]!.position;
    const b = hist[hist.length - 359]!.position;
    const head = overlays.at(-1)!.head!.at;
    expect(head.lat).toBeCloseTo((a.lat + b.lat) / 2, 9);
    expect(head.lon).toBeCloseTo((a.lon + b.lon) / 2, 9);
    expect(container.querySelector("#track-fix")?.textContent).toContain("5 s before the playback time");
    // Not following: the map is let go.
    fireEvent.click(container.querySelector("#track-follow")!);
    expect(follows.at(-1)).toBeNull();
  });

  it("plays at the chosen speed and pauses", async () => {
    const { p } = setup();
    const { container } = render(<PlaybackPanel {...p} />);
    await waitFor(() => expect(container.querySelector("#track-play")).not.toBeNull());
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "performance"] });
    const playhead = () => Date.parse(container.querySelector("#track-playhead")!.getAttribute("data-playhead")!);
    const t0 = playhead();
    fireEvent.click(container.querySelector("[data-speed='60']")!);
    fireEvent.click(container.querySelector("#track-play")!);
    expect(container.querySelector("#playback-panel")?.getAttribute("data-playing")).toBe("true");
    act(() => vi.advanceTimersByTime(2000));
    // 2 s at 60× is two minutes of track.
    expect(playhead() - t0).toBe(120_000);
    fireEvent.click(container.querySelector("#track-play")!);
    act(() => vi.advanceTimersByTime(2000));
    expect(playhead() - t0).toBe(120_000);
    fireEvent.click(container.querySelector("[data-speed='1']")!);
    fireEvent.click(container.querySelector("#track-play")!);
    act(() => vi.advanceTimersByTime(3000));
    expect(playhead() - t0).toBe(123_000);
  });

  it("exports the loaded window and shows the written path", async () => {
    const { p } = setup();
    const { container } = render(<PlaybackPanel {...p} />);
    await waitFor(() => expect(container.querySelector("[data-export='kml']")).not.toBeNull());
    fireEvent.click(container.querySelector("[data-export='kml']")!);
    expect(p.onExport).toHaveBeenCalledWith({ unit_id: "u-01", from: "2026-11-29T09:00:00.000Z", to: null }, "kml");
    await waitFor(() => expect(container.querySelector("#track-export-result")?.getAttribute("data-export-path")).toBe("/x/u-01.kml"));
    expect(container.querySelector("#track-export-result")?.textContent).toBe("7 fixes written to /x/u-01.kml");
  });

  it("shows the backend's refusal and an empty window in words", async () => {
    const { p } = setup({ loadTrack: async () => Promise.reject({ code: "not_found", message: "unit u-01 does not exist" }) });
    const { container } = render(<PlaybackPanel {...p} />);
    await waitFor(() => expect(container.querySelector("#track-error")?.textContent).toBe("unit u-01 does not exist"));
    cleanup();
    const empty = setup({ loadTrack: async (q) => ({ unit_id: q.unit_id, callsign: "巡01", points: [], truncated: false }) });
    const r = render(<PlaybackPanel {...empty.p} />);
    await waitFor(() => expect(r.container.querySelector("#track-empty")?.textContent).toBe("No fixes of 巡01 in this window"));
  });
});

describe("GpsLine", () => {
  const fix = { position: { lat: 42.50621, lon: 1.51903 }, fix_time: "2026-11-29T09:59:57Z", heading_deg: null, speed_mps: 0, accuracy_m: 4 };

  it("shows the receiver, its counts and the newest fix with its age", () => {
    const gps = { source: "gpsd://127.0.0.1:2947", connected: true, sentences: 120, fixes: 40, skipped: 3, last_fix: fix, error: null };
    const { container } = render(<GpsLine lang="en" now={NOW} gps={gps} staleAfterS={120} myFix={fix} />);
    const line = container.querySelector<HTMLElement>("#gps-status")!;
    expect(line.dataset.gps).toBe("connected");
    expect(line.textContent).toContain("gpsd://127.0.0.1:2947");
    expect(line.querySelector("[data-gps-counts]")?.textContent).toBe("40 fixes · 120 sentences · 3 skipped");
    expect(line.querySelector("[data-gps-fix]")?.textContent).toContain("42.50621, 1.51903");
    expect(line.querySelector("[data-fix-age]")?.textContent).toBe("3 s");
  });

  it("says when the receiver is gone and why, and when there is none", () => {
    const gps = { source: "/dev/ttyUSB0", connected: false, sentences: 0, fixes: 0, skipped: 0, last_fix: null, error: "/dev/ttyUSB0: No such file or directory" };
    const { container, rerender } = render(<GpsLine lang="zh" now={NOW} gps={gps} staleAfterS={120} myFix={null} />);
    expect(container.querySelector("#gps-status")?.getAttribute("data-gps")).toBe("disconnected");
    expect(container.querySelector("[data-gps-state]")?.textContent).toBe("未连接");
    expect(container.querySelector("[data-gps-error]")?.textContent).toContain("No such file or directory");
    expect(container.querySelector("#gps-status")?.textContent).toContain("尚无定位");
    rerender(<GpsLine lang="en" now={NOW} gps={null} staleAfterS={120} myFix={fix} />);
    expect(container.querySelector("#gps-status")?.getAttribute("data-gps")).toBe("none");
    expect(container.querySelector("#gps-status")?.textContent).toContain("No receiver (start with --gps SOURCE to use one)");
    expect(container.querySelector("[data-fix-age]")?.textContent).toBe("3 s");
  });
});
