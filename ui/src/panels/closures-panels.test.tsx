// @vitest-environment jsdom
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { act, cleanup, fireEvent, render, waitFor } from "@testing-library/react";
import { useState } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { RoadClosureView } from "../bindings";
import type { Drawing } from "../closures";
import { MockBackend } from "../mock/backend";
import { ClosuresPanel } from "./ClosuresPanel";
import { formatFromName, ImportPanel } from "./ImportPanel";

afterEach(() => {
  cleanup();
  clearMocks();
});

/** The fake behind invoke(), as in the app without Tauri. */
function backend(now = Date.now()) {
  const m = new MockBackend({ now: () => now });
  mockIPC((cmd, payload) => m.handle(cmd, payload));
  return m;
}

function chooseFile(input: HTMLInputElement, name: string, text: string) {
  const file = new File([text], name, { type: "text/plain" });
  fireEvent.change(input, { target: { files: [file] } });
}

function chooseBytes(input: HTMLInputElement, name: string, bytes: number[]) {
  const file = new File([new Uint8Array(bytes)], name, { type: "text/csv" });
  fireEvent.change(input, { target: { files: [file] } });
}

const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

describe("ImportPanel", () => {
  it("guesses the format from the extension", () => {
    expect(formatFromName("posts.CSV")).toBe("csv");
    expect(formatFromName("a.geojson")).toBe("geojson");
    expect(formatFromName("a.json")).toBe("geojson");
    expect(formatFromName("a.txt")).toBeNull();
  });

  it("shows a problem and offers no import; a good file previews WGS-84 with 6 decimals and imports", async () => {
    const m = backend();
    const onImported = vi.fn();
    const { container } = render(<ImportPanel lang="en" onImported={onImported} onDismiss={() => {}} />);
    const q = <T extends Element>(s: string) => container.querySelector<T>(s);
    // The datum is shown, WGS-84 chosen until changed.
    expect(q<HTMLInputElement>("input[name='import-datum'][value='wgs84']")?.checked).toBe(true);
    expect(q("#import-datum")?.textContent).toContain("GCJ-02 (AMap 高德, Tencent 腾讯)");
    expect(q<HTMLButtonElement>("#import-preview")?.disabled).toBe(true);

    chooseFile(q<HTMLInputElement>("#import-file")!, "bad.csv", "id,kind,name_zh,name_en,lat,lon\npost-x,post,新警务站,New Post,91,1.52\n");
    await waitFor(() => expect(q<HTMLButtonElement>("#import-preview")?.disabled).toBe(false));
    fireEvent.click(q("#import-preview")!);
    await waitFor(() => expect(q("#import-problems")).not.toBeNull());
    expect(q("[data-import-problem]")?.textContent).toBe("line 2, column lat: latitude 91 is outside −90..90");
    expect(q("#import-commit")).toBeNull();

    chooseFile(q<HTMLInputElement>("#import-file")!, "posts.geojson", "");
    await waitFor(() => expect(q("#import-file-name")?.textContent).toContain("posts.geojson"));
    expect(q<HTMLSelectElement>("#import-format")?.value).toBe("geojson");
    expect(q("#import-problems")).toBeNull();

    chooseFile(q<HTMLInputElement>("#import-file")!, "good.csv", "id,kind,name_zh,name_en,lat,lon\npost-x,post,新警务站,New Post,42.5123456,1.5234564\nchk-y,checkpoint,南检查站,South,42.49,1.51\n");
    await waitFor(() => expect(q("#import-file-name")?.textContent).toContain("good.csv"));
    expect(q<HTMLSelectElement>("#import-format")?.value).toBe("csv");
    fireEvent.click(q("#import-preview")!);
    await waitFor(() => expect(q("#import-table")).not.toBeNull());
    const row = q<HTMLElement>("[data-import-facility='post-x']")!;
    expect(row.querySelector("[data-lat]")?.textContent).toBe("42.512346");
    expect(row.querySelector("[data-lon]")?.textContent).toBe("1.523456");
    expect(row.textContent).toContain("Post");
    expect(row.textContent).toContain("新警务站 / New Post");
    const commit = q<HTMLButtonElement>("#import-commit")!;
    expect(commit.textContent).toBe("Import 2 facilities");
    expect(m.facilities).toHaveLength(4);
    fireEvent.click(commit);
    await waitFor(() => expect(q("#import-done")?.textContent).toBe("2 facilities imported"));
    expect(m.facilities.map((f) => f.id)).toContain("chk-y");
    expect(onImported).toHaveBeenCalledTimes(1);

    // The same file again: the backend writes nothing (written 0, no problems); the panel says
    // so instead of staying on the preview, and nothing is read again.
    fireEvent.click(q("#import-preview")!);
    await waitFor(() => expect(q("#import-commit")).not.toBeNull());
    fireEvent.click(q("#import-commit")!);
    await waitFor(() => expect(q("#import-done")?.textContent).toBe("No change: all 2 facilities are up to date"));
    expect(q("#import-table")).toBeNull();
    expect(onImported).toHaveBeenCalledTimes(1);
    expect(m.facilities).toHaveLength(6);
  });

  it("reads a GBK file (Excel on Chinese Windows) as GB18030 and says so; a UTF-8 file has no note", async () => {
    const m = backend();
    const { container } = render(<ImportPanel lang="zh" onImported={() => {}} onDismiss={() => {}} />);
    const q = <T extends Element>(s: string) => container.querySelector<T>(s);
    // "警务站" in GBK: be af ce f1 d5 be.
    chooseBytes(q<HTMLInputElement>("#import-file")!, "gbk.csv", [...ascii("id,kind,name_zh,name_en,lat,lon\r\np1,post,"), 0xbe, 0xaf, 0xce, 0xf1, 0xd5, 0xbe, ...ascii(",Post,42.5,1.5\r\n")]);
    await waitFor(() => expect(q("#import-encoding")?.textContent).toBe("文件不是 UTF-8：已按 GB18030/GBK 编码读取"));
    fireEvent.click(q("#import-preview")!);
    await waitFor(() => expect(q("#import-table")).not.toBeNull());
    expect(q("[data-import-facility='p1']")?.textContent).toContain("警务站 / Post");
    fireEvent.click(q("#import-commit")!);
    await waitFor(() => expect(q("#import-done")?.textContent).toBe("已导入 1 个设施"));
    expect(m.facilities.find((f) => f.id === "p1")?.name_zh).toBe("警务站");

    chooseFile(q<HTMLInputElement>("#import-file")!, "utf8.csv", "id,kind,name_zh,name_en,lat,lon\np2,post,警务站,Post,42.5,1.5\n");
    await waitFor(() => expect(q("#import-file-name")?.textContent).toContain("utf8.csv"));
    expect(q("#import-encoding")).toBeNull();
  });

  it("shows facilities outside the map area as amber warnings that do not block the import", async () => {
    const m = backend();
    const { container } = render(<ImportPanel lang="en" onImported={() => {}} onDismiss={() => {}} />);
    const q = <T extends Element>(s: string) => container.querySelector<T>(s);
    // s1 has latitude and longitude swapped.
    chooseFile(q<HTMLInputElement>("#import-file")!, "s.csv", "id,kind,name_zh,name_en,lat,lon\ns1,station,甲,A,1.5218,42.5063\np1,post,乙,B,42.5,1.5\n");
    await waitFor(() => expect(q<HTMLButtonElement>("#import-preview")?.disabled).toBe(false));
    fireEvent.click(q("#import-preview")!);
    await waitFor(() => expect(q("#import-warnings")).not.toBeNull());
    expect(q("#import-warnings strong")?.textContent).toBe("1 facilities lie outside the map area — check the latitude/longitude order and the datum");
    expect(q("[data-import-warning='facility s1']")?.textContent).toBe(
      "facility s1: 1.521800,42.506300 is outside the area pack (42.420..42.660 N, 1.400..1.790 E): check the latitude/longitude order and the declared datum",
    );
    expect(q("#import-problems")).toBeNull();
    const commit = q<HTMLButtonElement>("#import-commit")!;
    expect(commit.disabled).toBe(false);
    fireEvent.click(commit);
    await waitFor(() => expect(q("#import-done")?.textContent).toBe("2 facilities imported"));
    expect(m.facilities.find((f) => f.id === "s1")?.position).toEqual({ lat: 1.5218, lon: 42.5063 });
  });

  it("sends the chosen datum and makes an old preview stale when it changes", async () => {
    const m = backend();
    const spy = vi.spyOn(m, "handle");
    const { container } = render(<ImportPanel lang="zh" onImported={() => {}} onDismiss={() => {}} />);
    const q = <T extends Element>(s: string) => container.querySelector<T>(s);
    chooseFile(q<HTMLInputElement>("#import-file")!, "a.csv", "id,kind,name_zh,name_en,lat,lon\np,post,甲,A,42.5,1.5\n");
    await waitFor(() => expect(q<HTMLButtonElement>("#import-preview")?.disabled).toBe(false));
    fireEvent.click(q("#import-preview")!);
    await waitFor(() => expect(q("#import-commit")?.textContent).toBe("导入 1 个设施"));
    fireEvent.click(q("input[name='import-datum'][value='gcj02']")!);
    expect(q("#import-commit")).toBeNull();
    fireEvent.click(q("#import-preview")!);
    await waitFor(() => expect(q("#import-table")).not.toBeNull());
    const call = spy.mock.calls.filter((c) => c[0] === "import_facilities").at(-1)!;
    expect((call[1] as { args: { datum: string; commit: boolean } }).args).toMatchObject({ datum: "gcj02", commit: false, format: "csv" });
  });
});

/** The panel with its drawing held like the console holds it. */
function Harness(props: { list: RoadClosureView[]; onChanged: () => void; now: number; initial?: Drawing | null; onDrawingSeen?: (d: Drawing | null) => void }) {
  const [d, setD] = useState<Drawing | null>(props.initial ?? null);
  props.onDrawingSeen?.(d);
  return <ClosuresPanel lang="zh" now={props.now} closures={props.list} loadError={null} drawing={d} onDrawing={setD} onChanged={props.onChanged} onDismiss={() => {}} />;
}

describe("ClosuresPanel", () => {
  it("snaps the clicked road, saves with a reason and an end, and keeps the drawing on an error", async () => {
    const now = Date.now();
    const m = backend(now);
    let seen: Drawing | null = null;
    const onChanged = vi.fn();
    const { container } = render(
      <Harness
        list={[]}
        now={now}
        onChanged={onChanged}
        initial={{ mode: "line", points: [{ lat: 42.5, lon: 1.5 }, { lat: 42.52, lon: 1.52 }], line: null, phase: "drawing" }}
        onDrawingSeen={(d) => (seen = d)}
      />,
    );
    const q = <T extends Element>(s: string) => container.querySelector<T>(s);
    // roadLine answered: the snapped line has the midpoint.
    await waitFor(() => expect(seen?.line).toHaveLength(3));
    expect(q("[data-draw-count]")?.textContent).toBe("2 个点");
    // Enter finishes.
    act(() => void window.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" })));
    await waitFor(() => expect(q("#closure-form")).not.toBeNull());
    // No reason: refused inline, nothing sent.
    fireEvent.submit(q("#closure-form")!);
    expect(q("#closure-error")?.textContent).toBe("请填写原因");
    fireEvent.click(q("[data-preset='closure.preset.flooding']")!);
    expect(q<HTMLInputElement>("#closure-reason")?.value).toBe("积水");
    fireEvent.change(q("#closure-end")!, { target: { value: "1" } });
    // The backend refuses (as another console's change might): the message shows, the drawing stays.
    vi.spyOn(m.closures, "handle").mockImplementationOnce(() => {
      throw { code: "invalid_input", message: "point 2 is not on a road" };
    });
    fireEvent.submit(q("#closure-form")!);
    await waitFor(() => expect(q("#closure-error")?.textContent).toBe("point 2 is not on a road"));
    expect((seen as Drawing | null)?.phase).toBe("form");
    expect(onChanged).not.toHaveBeenCalled();
    // Accepted: the drawing ends and the list is read again.
    fireEvent.submit(q("#closure-form")!);
    await waitFor(() => expect(onChanged).toHaveBeenCalledTimes(1));
    expect(seen).toBeNull();
    const saved = m.closures.list[0]!;
    expect(saved.closure.reason).toBe("积水");
    expect(saved.closure.shape.type).toBe("line");
    const pts = saved.closure.shape.type === "line" ? saved.closure.shape.points : [];
    expect(pts.map((p) => [+p.lat.toFixed(6), +p.lon.toFixed(6)])).toEqual([
      [42.5, 1.5],
      [42.51, 1.51],
      [42.52, 1.52],
    ]);
    expect(Date.parse(saved.closure.ends_at!) - now).toBeGreaterThanOrEqual(3600_000);
  });

  it("shows why a road line could not be read and does not let the drawing finish", async () => {
    const m = backend();
    vi.spyOn(m.closures, "handle").mockImplementation(() => {
      throw { code: "invalid_input", message: "point 2 is 800 m from the nearest road" };
    });
    const { container } = render(
      <Harness list={[]} now={Date.now()} onChanged={() => {}} initial={{ mode: "line", points: [{ lat: 42.5, lon: 1.5 }, { lat: 42.6, lon: 1.6 }], line: null, phase: "drawing" }} />,
    );
    await waitFor(() => expect(container.querySelector("#closure-error")?.textContent).toBe("point 2 is 800 m from the nearest road"));
    expect(container.querySelector<HTMLButtonElement>("#closure-finish")?.disabled).toBe(true);
    act(() => void window.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" })));
    expect(container.querySelector("#closure-form")).toBeNull();
  });

  it("says why a road line that snaps to one place cannot be finished", async () => {
    const m = backend();
    const P = { lat: 42.5176, lon: 1.5667 };
    // The backend refuses identical clicks (dispatch.rs): its message shows.
    const a = render(<Harness list={[]} now={Date.now()} onChanged={() => {}} initial={{ mode: "line", points: [P, { ...P }], line: null, phase: "drawing" }} />);
    await waitFor(() => expect(a.container.querySelector("#closure-error")?.textContent).toBe("points: these points snap to the same place on the road; click further apart along it"));
    expect(a.container.querySelector<HTMLButtonElement>("#closure-finish")?.disabled).toBe(true);
    a.unmount();
    // A backend that answers one point (or the same point twice): the panel says why itself.
    vi.spyOn(m.closures, "handle").mockImplementation(() => [P, { ...P }]);
    const b = render(<Harness list={[]} now={Date.now()} onChanged={() => {}} initial={{ mode: "line", points: [P, { lat: 42.518, lon: 1.5675 }], line: null, phase: "drawing" }} />);
    await waitFor(() => expect(b.container.querySelector("#closure-same-spot")?.textContent).toBe("这些点落在道路的同一处，请沿道路点得更远一些"));
    expect(b.container.querySelector("#closure-error")).toBeNull();
    expect(b.container.querySelector<HTMLButtonElement>("#closure-finish")?.disabled).toBe(true);
  });

  it("lists active closures first with time left and segments, greys the rest, and lifts after a confirm", async () => {
    const now = Date.parse("2026-11-29T10:00:00Z");
    const m = backend(now);
    const line = { type: "line" as const, points: [{ lat: 42.5, lon: 1.5 }, { lat: 42.51, lon: 1.51 }] };
    m.handle("set_road_closure", { args: { closure_id: null, shape: line, reason: "塌方", ends_at: "2026-11-29T12:30:00Z" } });
    m.handle("set_road_closure", { args: { closure_id: null, shape: line, reason: "旧的", ends_at: "2026-11-29T09:00:00Z" } });
    const list = m.handle("road_closures") as RoadClosureView[];
    const onChanged = vi.fn();
    const { container } = render(<Harness list={list} now={now} onChanged={onChanged} />);
    const rows = [...container.querySelectorAll<HTMLElement>("[data-closure-id]")];
    expect(rows.map((r) => r.dataset.closureState)).toEqual(["active", "expired"]);
    expect(rows[0]!.textContent).toContain("塌方");
    expect(rows[0]!.querySelector("[data-closure-remaining]")?.textContent).toMatch(/^剩余 2 小时 · 2026\/11\/29 \d{2}:30:00$/);
    expect(rows[0]!.querySelector("[data-closure-segments]")?.textContent).toBe("封闭路段 1 段");
    expect(rows[0]!.textContent).toContain("dispatcher 设于");
    expect(rows[1]!.className).toContain("closure-inactive");
    expect(rows[1]!.querySelector("[data-lift]")).toBeNull();
    fireEvent.click(rows[0]!.querySelector("[data-lift]")!);
    expect(m.closures.list[0]!.closure.lifted).toBe(false);
    fireEvent.click(rows[0]!.querySelector("[data-lift-confirm]")!);
    await waitFor(() => expect(onChanged).toHaveBeenCalledTimes(1));
    expect(m.closures.list.find((v) => v.closure.reason === "塌方")?.closure.lifted).toBe(true);
  });

  it("Esc cancels a drawing before the console sees it", () => {
    const outer = vi.fn();
    window.addEventListener("keydown", outer);
    let seen: Drawing | null = null;
    render(<Harness list={[]} now={Date.now()} onChanged={() => {}} initial={{ mode: "area", points: [], line: null, phase: "drawing" }} onDrawingSeen={(d) => (seen = d)} />);
    act(() => void document.body.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true })));
    expect(seen).toBeNull();
    expect(outer).not.toHaveBeenCalled();
    // Without a drawing, Esc goes on to the console (which closes the panel).
    act(() => void document.body.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true })));
    expect(outer).toHaveBeenCalledTimes(1);
    window.removeEventListener("keydown", outer);
  });
});
