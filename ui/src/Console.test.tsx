// @vitest-environment jsdom
// The whole console against the fake backend through the real IPC path (mockIPC), without
// the map (WebGL is not available in jsdom).
import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { installMockBackend } from "./mock/install";

vi.mock("./map/MapView", () => ({ MapView: () => <div data-testid="map" /> }));

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("Console", () => {
  it("starts, creates an incident through the form and shows a refused status change", async () => {
    const backend = installMockBackend({ settings: { language: "en" } });
    const { container } = render(<App />);
    await waitFor(() => expect(container.querySelectorAll("[data-incident-id]")).toHaveLength(3));
    expect(screen.getByRole("status").textContent).toContain("DEMO");

    // N opens the form.
    fireEvent.keyDown(window, { key: "n" });
    const address = await screen.findByLabelText("Address or place");
    fireEvent.change(address, { target: { value: "Somewhere 12" } });
    fireEvent.change(container.querySelector("#incident-type")!, { target: { value: "theft" } });
    fireEvent.change(container.querySelector("#incident-description")!, { target: { value: "bike" } });
    fireEvent.click(container.querySelector("#incident-submit")!);
    await waitFor(() => expect(container.querySelectorAll("[data-incident-id]")).toHaveLength(4));
    const detail = await waitFor(() => {
      const d = container.querySelector("#incident-detail");
      expect(d).not.toBeNull();
      return d!;
    });
    expect(detail.textContent).toContain("Somewhere 12");
    expect(detail.querySelectorAll("[data-timeline-entry]")).toHaveLength(1);

    // Esc closes; open a unit; a status change made elsewhere makes this one illegal.
    fireEvent.keyDown(window, { key: "Escape" });
    fireEvent.click(container.querySelector("[data-unit-id='u-02'] .callsign")!);
    const busy = await waitFor(() => container.querySelector("#unit-card [data-status-to='busy']")!);
    act(() => backend.forceUnitStatus("u-02", "out_of_service"));
    fireEvent.click(busy);
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("cannot become busy");
  });

  it("shows the link in the top bar and resolves a conflict from the sync panel", async () => {
    const backend = installMockBackend({ settings: { language: "en" }, sync: { offlineMs: 60_000, syncingMs: 1000, offlineSinceAgoS: 60 } });
    const { container } = render(<App />);
    const indicator = await waitFor(() => {
      const b = container.querySelector<HTMLElement>("#sync-indicator[data-sync-state='offline']");
      expect(b).not.toBeNull();
      return b!;
    });
    // A minute offline: amber, not yet red.
    expect(indicator.dataset.tone).toBe("offline-amber");
    expect(container.querySelector("#conflict-badge")?.textContent).toBe("3 conflicts");
    fireEvent.click(indicator);
    const panel = await waitFor(() => {
      const p = container.querySelector<HTMLElement>("#sync-panel");
      expect(p?.querySelectorAll("[data-conflict-id]")).toHaveLength(3);
      return p!;
    });
    fireEvent.click(panel.querySelector("[data-conflict-kind='double_assignment'] [data-keep-op='op-remote-assign']")!);
    await waitFor(() => expect(container.querySelectorAll("#sync-panel [data-conflict-id]")).toHaveLength(2));
    await waitFor(() => expect(container.querySelector("#conflict-badge")?.textContent).toBe("2 conflicts"));
    // 巡03 moved to the accident on the board; the resolution is a write waiting in the outbox.
    await waitFor(() => expect(container.querySelector("[data-unit-id='u-03']")?.textContent).toContain("#2026-0001"));
    expect(backend.syncStatus().pending.critical).toBeGreaterThan(4);
    // Esc closes the panel.
    fireEvent.keyDown(window, { key: "Escape" });
    await waitFor(() => expect(container.querySelector("#sync-panel")).toBeNull());
  });

  it("opens the devices panel from the top bar and binds a device", async () => {
    const backend = installMockBackend({ settings: { language: "en" } });
    const { container } = render(<App />);
    const badge = await waitFor(() => {
      const b = container.querySelector("#unbound-badge");
      expect(b?.textContent).toBe("3");
      expect(b?.getAttribute("aria-label")).toBe("3 unbound");
      return b!;
    });
    fireEvent.click(badge);
    const row = await waitFor(() => container.querySelector("#devices-panel [data-device-id='S-LAPTOP-07']")!);
    fireEvent.change(row.querySelector("select")!, { target: { value: "u-05" } });
    fireEvent.click(row.querySelector("[data-bind]")!);
    await waitFor(() => expect(container.querySelector("#bound-devices [data-device-id='S-LAPTOP-07']")?.getAttribute("data-bound-unit")).toBe("u-05"));
    await waitFor(() => expect(container.querySelector("#unbound-badge")?.getAttribute("aria-label")).toBe("2 unbound"));
    expect(backend.devices.find((d) => d.device_id === "S-LAPTOP-07")?.callsign).toBe("步01");
  });

  it("opens the field layout for --unit: assignment, big buttons as the domain allows, GPS line", async () => {
    const backend = installMockBackend({ settings: { language: "zh_cn" }, fieldUnit: "u-02", gpsTickMs: 0 });
    const { container } = render(<App />);
    const field = await waitFor(() => {
      const f = container.querySelector<HTMLElement>("#field-assignment [data-incident-id-field]");
      expect(f).not.toBeNull();
      return f!;
    });
    // The command layout is not there: no queue, no board.
    expect(container.querySelector("#queue-title")).toBeNull();
    expect(container.querySelector("#field-address")?.textContent).toBe("Avinguda Meritxell, Andorra la Vella");
    expect(container.querySelector("#gps-status")?.getAttribute("data-gps")).toBe("connected");
    expect(container.querySelector("[data-gps-counts]")?.textContent).toBe("定位 612 · 语句 1843 · 跳过 37");
    const buttons = () => [...container.querySelectorAll<HTMLButtonElement>("[data-field-action]")];
    await waitFor(() => expect(buttons().filter((b) => !b.disabled).map((b) => b.dataset.fieldAction)).toEqual(["ack", "en_route", "on_scene", "clear"]));
    // 确认 calls acknowledge_assignment; the button then says when and stays down.
    fireEvent.click(container.querySelector("[data-field-action='ack']")!);
    await waitFor(() => expect(container.querySelector("[data-field-action='ack']")?.textContent).toMatch(/^确认已确认 \d{2}:\d{2}:\d{2}$/));
    expect(container.querySelector<HTMLButtonElement>("[data-field-action='ack']")?.disabled).toBe(true);
    fireEvent.click(container.querySelector("[data-field-action='en_route']")!);
    await waitFor(() => expect(container.querySelector("#field-me [data-unit-status]")?.getAttribute("data-unit-status")).toBe("en_route"));
    await waitFor(() => expect(buttons().filter((b) => !b.disabled).map((b) => b.dataset.fieldAction)).toEqual(["on_scene", "clear"]));
    // A note from the field reaches the incident's timeline.
    fireEvent.change(container.querySelector("#field-note")!, { target: { value: "路口拥堵" } });
    fireEvent.click(container.querySelector("#field-note-submit")!);
    await waitFor(() => expect(container.querySelector("#field-notes")?.textContent).toContain("路口拥堵"));
    expect(backend.detail(field.dataset.incidentIdField!).timeline.at(-1)?.event).toEqual({ kind: "note", text: "路口拥堵" });
  });
});
