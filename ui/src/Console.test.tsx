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
});
