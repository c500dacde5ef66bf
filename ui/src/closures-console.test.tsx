// @vitest-environment jsdom
// Road closures through the whole console against the fake backend (mockIPC), without the map.
import { act, cleanup, fireEvent, render, waitFor } from "@testing-library/react";
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import type { RoadClosureView } from "./bindings";
import { installMockBackend } from "./mock/install";

vi.mock("./map/MapView", () => ({ MapView: () => <div data-testid="map" /> }));

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("closures in the console", () => {
  it("the top bar counts active closures, following changes made on another console", async () => {
    const backend = installMockBackend({ settings: { language: "zh_cn" } });
    const { container } = render(<App />);
    await waitFor(() => expect(container.querySelector("#open-closures")).not.toBeNull());
    expect(container.querySelector("#closures-badge")).toBeNull();
    const line = { type: "line", points: [{ lat: 42.5, lon: 1.5 }, { lat: 42.51, lon: 1.51 }] };
    // Written "elsewhere": the state-changed event makes the console read the list again.
    let v!: RoadClosureView;
    act(() => {
      v = backend.handle("set_road_closure", { args: { closure_id: null, shape: line, reason: "管制", ends_at: null } }) as RoadClosureView;
    });
    await waitFor(() => expect(container.querySelector("#closures-badge")?.textContent).toBe("1"));
    expect(container.querySelector("#closures-badge")?.getAttribute("title")).toBe("1 处封路生效中");

    fireEvent.click(container.querySelector("#open-closures")!);
    await waitFor(() => expect(container.querySelector("[data-closure-state='active']")?.textContent).toContain("管制"));
    act(() => void backend.handle("lift_road_closure", { args: { closure_id: v.closure.closure_id } }));
    await waitFor(() => expect(container.querySelector("[data-closure-state='lifted']")).not.toBeNull());
    expect(container.querySelector("#closures-badge")).toBeNull();

    // Esc with no drawing closes the panel as any other.
    fireEvent.keyDown(window, { key: "Escape" });
    await waitFor(() => expect(container.querySelector("#closures-panel")).toBeNull());
  });
});
