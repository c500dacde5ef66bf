// @vitest-environment jsdom
// The closest units and the coverage toggle in the whole console, against the fake backend
// through the real IPC path (mockIPC), without the map (WebGL is not available in jsdom).
import { cleanup, fireEvent, render, waitFor } from "@testing-library/react";
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { installMockBackend } from "./mock/install";

vi.mock("./map/MapView", () => ({
  MapView: (p: { routes?: unknown[] | null; children?: unknown }) => (
    <div data-testid="map" data-routes={p.routes?.length ?? 0}>
      {p.children as never}
    </div>
  ),
}));

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("dispatch intelligence in the console", () => {
  it("ranks the fire's closest units, draws their routes, D dispatches 摩01, coverage shows its figure", async () => {
    const backend = installMockBackend({ settings: { language: "en" } });
    const { container } = render(<App />);
    await waitFor(() => expect(container.querySelectorAll("[data-incident-id]")).toHaveLength(3));
    const fire = [...backend.incidents.values()].find((r) => r.detail.summary.incident_type === "fire")!.detail.summary.id;
    fireEvent.click(container.querySelector(`[data-incident-id="${fire}"]`)!);
    await waitFor(() => expect(container.querySelectorAll("#closest-units [data-closest-unit]")).toHaveLength(5));
    expect(container.querySelector("[data-testid='map']")?.getAttribute("data-routes")).toBe("5");
    const first = container.querySelector<HTMLElement>("#closest-units [data-closest-unit]")!;
    expect(first.dataset.closestUnit).toBe("u-04");
    expect(first.querySelector(".closest-eta")?.textContent).toMatch(/^0:\d\d$/);

    fireEvent.keyDown(window, { key: "d" });
    fireEvent.keyDown(window, { key: "d" });
    await waitFor(() => expect(container.querySelectorAll("#closest-units [data-closest-unit]")).toHaveLength(4));
    expect(backend.units.find((u) => u.id === "u-04")?.status).toBe("dispatched");
    // Two presses while the first dispatch ran: one dispatch.
    expect(backend.detail(fire).timeline.filter((e) => e.event.kind === "unit_assigned")).toHaveLength(2);
    expect(container.querySelector("#action-error")).toBeNull();

    fireEvent.click(container.querySelector("#coverage-toggle")!);
    await waitFor(() => expect(container.querySelector("#coverage-figure")?.textContent).toBe("3-min coverage 20%"));

    // Esc closes the card: no ranking, no routes.
    fireEvent.keyDown(window, { key: "Escape" });
    await waitFor(() => expect(container.querySelector("[data-testid='map']")?.getAttribute("data-routes")).toBe("0"));
  });
});
