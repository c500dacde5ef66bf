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
});
