// @vitest-environment jsdom
import { act, cleanup, fireEvent, render } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ClosestUnits as ClosestUnitsView, CoverageView as CoverageViewT } from "../bindings";
import { MockBackend } from "../mock/backend";
import { ClosestUnits } from "./ClosestUnits";
import { CoverageControl } from "./CoverageControl";

const NOW = Date.parse("2026-11-29T10:00:00Z");
afterEach(cleanup);

/** The fake's ranking for the fire, with 交01 made position-less and one unit cut off. */
function ranking(): ClosestUnitsView {
  const m = new MockBackend({ now: () => NOW });
  const fire = m.consoleState().incidents.find((i) => i.incident_type === "fire")!;
  m.units.find((u) => u.id === "u-06")!.fix = null;
  const c = m.handle("closest_units", { args: { incident_id: fire.id } }) as ClosestUnitsView;
  c.candidates.push({ ...c.candidates[0]!, unit_id: "u-09", callsign: "巡09", eta_s: null, distance_m: null, route: null, problem: "closed_off", problem_detail: "road closures cut every route to the incident: 积水 0.8 m; 塌方" });
  c.closures_active = 2;
  return c;
}

function deferred() {
  let resolve!: (v: boolean) => void;
  const promise = new Promise<boolean>((r) => (resolve = r));
  return { promise, resolve };
}

describe("ClosestUnits", () => {
  it("lists the ranked units with ETA, road km and fix age, then the problems and the closures note", () => {
    const c = ranking();
    const { container } = render(<ClosestUnits lang="zh" now={NOW} staleAfterS={120} closest={c} busy={false} onDispatch={async () => true} />);
    expect(container.querySelector("h3")?.textContent).toBe("最近可用单位");
    const rows = [...container.querySelectorAll<HTMLElement>("[data-closest-unit]")];
    expect(rows.map((r) => r.dataset.closestUnit)).toEqual(["u-04", "u-05", "u-01", "u-02"]);
    expect(rows.map((r) => r.querySelector(".closest-rank")?.textContent)).toEqual(["1", "2", "3", "4"]);
    const first = c.candidates[0]!;
    expect(rows[0]!.querySelector(".closest-eta")?.textContent).toBe(`${first.eta_s} 秒`);
    expect(rows[0]!.querySelector(".closest-km")?.textContent).toBe(`${(first.distance_m! / 1000).toFixed(1)} 公里`);
    // 摩01's fix is 400 s old: stale against 120 s.
    expect(rows[0]!.querySelector(".fix-age")?.getAttribute("data-age-tone")).toBe("stale");
    expect(rows[0]!.querySelector("button")?.textContent).toBe("派遣 D");
    expect(rows[1]!.querySelector("button")?.textContent).toBe("派遣");
    const problems = [...container.querySelectorAll<HTMLElement>("[data-problem-unit]")];
    // Translated kinds; of the English details only the closure reasons, the rest as a tooltip.
    expect(problems.map((p) => p.textContent?.trim())).toEqual(["交01 无位置", "巡09 道路封闭阻断：积水 0.8 m；塌方 6 分钟"]);
    expect(problems[0]!.querySelector(".closest-problem")?.getAttribute("title")).toBe("the unit has never reported a position");
    expect(problems[1]!.querySelector(".closest-problem")?.getAttribute("title")).toBe("road closures cut every route to the incident: 积水 0.8 m; 塌方");
    expect(container.querySelector("#closest-closures")?.textContent).toContain("已避开 2 处封闭");
  });

  it("D dispatches the first ranked unit once, not while typing, and the next one after", async () => {
    const c = ranking();
    const calls: string[] = [];
    let pending = deferred();
    const onDispatch = vi.fn((id: string) => {
      calls.push(id);
      return pending.promise;
    });
    const { container } = render(
      <div>
        <input id="typing" />
        <ClosestUnits lang="en" now={NOW} staleAfterS={120} closest={c} busy={false} onDispatch={onDispatch} />
      </div>,
    );
    const input = container.querySelector<HTMLInputElement>("#typing")!;
    fireEvent.keyDown(input, { key: "d" });
    expect(calls).toEqual([]);
    fireEvent.keyDown(window, { key: "d" });
    fireEvent.keyDown(window, { key: "D" });
    // The second press while the first runs does nothing; every button waits.
    expect(calls).toEqual(["u-04"]);
    expect([...container.querySelectorAll<HTMLButtonElement>("[data-dispatch-unit]")].every((b) => b.disabled)).toBe(true);
    await act(async () => {
      pending.resolve(true);
      await pending.promise;
    });
    const done = container.querySelector<HTMLButtonElement>("[data-dispatch-unit='u-04']")!;
    expect(done.textContent).toBe("Dispatched");
    expect(done.disabled).toBe(true);
    // Before the ranking refreshes, D moves on to the next unit rather than repeating 摩01.
    pending = deferred();
    fireEvent.keyDown(window, { key: "d" });
    expect(calls).toEqual(["u-04", "u-05"]);
    await act(async () => {
      pending.resolve(false);
      await pending.promise;
    });
    // A refused dispatch leaves the unit offered.
    expect(container.querySelector("[data-dispatch-unit='u-05']")?.textContent).toBe("Dispatch D");
  });

  it("shows a muted line when no ranking is possible and waits while loading", () => {
    const c: ClosestUnitsView = { incident_id: "i", candidates: [], closures_active: 0, unavailable: "no area pack is open, so there is no road network to route on; units are listed by straight-line distance, not by road", took_ms: 0 };
    const { container, rerender } = render(<ClosestUnits lang="en" now={NOW} staleAfterS={120} closest={c} busy={false} onDispatch={async () => true} />);
    expect(container.querySelector("#closest-unavailable")?.textContent).toBe("No road ranking: no area pack is open");
    expect(container.querySelector("#closest-unavailable")?.getAttribute("title")).toBe(c.unavailable);
    expect(container.textContent).toContain("No available unit");
    expect(container.querySelector("[data-closest-unit]")).toBeNull();
    rerender(<ClosestUnits lang="en" now={NOW} staleAfterS={120} closest={null} busy={false} onDispatch={async () => true} />);
    expect(container.textContent).toContain("Ranking available units by road time");
  });

  it("without routing says why once, lists the units by straight line, and D and the buttons dispatch them", async () => {
    const m = new MockBackend({ now: () => NOW });
    const far = m.handle("create_incident", {
      args: { incident_type: "other", priority: null, location: { lat: 42.7, lon: 1.5211 }, address: "Far away", description: "" },
    }) as { summary: { id: string } };
    m.units.find((u) => u.id === "u-02")!.fix = null;
    const c = m.handle("closest_units", { args: { incident_id: far.summary.id } }) as ClosestUnitsView;
    const calls: string[] = [];
    const { container } = render(
      <ClosestUnits lang="zh" now={NOW} staleAfterS={120} closest={c} busy={false} onDispatch={async (id) => (calls.push(id), true)} />,
    );
    expect(container.querySelector("#closest-unavailable")?.textContent).toBe("无法按道路排序：事件地点不在道路网上（最近道路 11.4 km） 按直线距离排列，非道路距离");
    expect(container.querySelectorAll("#closest-unavailable")).toHaveLength(1);
    const rows = [...container.querySelectorAll<HTMLElement>("[data-closest-unit]")];
    expect(rows.map((r) => r.dataset.closestUnit)).toEqual(["u-06", "u-04", "u-05", "u-01"]);
    const straight = rows.map((r) => Number(r.querySelector<HTMLElement>(".closest-straight")?.dataset.straightM));
    expect([...straight].sort((a, b) => a - b)).toEqual(straight);
    expect(rows[0]!.querySelector(".closest-straight")?.textContent).toBe(`直线 ${(straight[0]! / 1000).toFixed(1)} km`);
    expect(rows[0]!.querySelector(".closest-eta")).toBeNull();
    // Only the unit without a position is under "无法计算到达时间", with no English inline.
    expect([...container.querySelectorAll<HTMLElement>("[data-problem-unit]")].map((p) => p.textContent?.trim())).toEqual(["巡02 无位置"]);
    expect(rows[0]!.querySelector("button")?.textContent).toBe("派遣 D");
    await act(async () => {
      fireEvent.keyDown(window, { key: "d" });
    });
    expect(calls).toEqual(["u-06"]);
    await act(async () => {
      fireEvent.click(rows[2]!.querySelector("button")!);
    });
    expect(calls).toEqual(["u-06", "u-05"]);
  });
});

describe("CoverageControl", () => {
  it("toggles and shows the 3-minute figure large, 1 and 5 minutes smaller, and the legend", () => {
    const m = new MockBackend({ now: () => NOW });
    const onToggle = vi.fn();
    const { container, rerender } = render(<CoverageControl lang="zh" on={false} onToggle={onToggle} coverage={null} />);
    fireEvent.click(container.querySelector("#coverage-toggle")!);
    expect(onToggle).toHaveBeenCalledWith(true);
    expect(container.querySelector("#coverage-figure")).toBeNull();
    rerender(<CoverageControl lang="zh" on onToggle={onToggle} coverage={m.handle("coverage") as never} />);
    // The figure is the available units' share; the layer's share (stations and posts too) smaller.
    expect(container.querySelector("#coverage-figure")?.textContent).toBe("3 分钟覆盖率 25%");
    expect(container.querySelector("#coverage-minor")?.textContent).toBe("1 分钟 8% · 5 分钟 35%");
    expect(container.querySelector("#coverage-by")?.textContent).toBe("按可用单位计");
    expect(container.querySelector("#coverage-layer")?.textContent).toBe("含警务站/派出所：3 分钟 37%（图层）");
    expect(container.querySelector("#coverage-legend-title")?.textContent).toBe("图层：派出所、警务站与可用单位的可达范围");
    expect([...container.querySelectorAll(".coverage-legend li")].map((li) => li.textContent)).toEqual(["1 分钟内", "3 分钟内", "5 分钟内", "超过 5 分钟（空白）"]);
    // No unit available: the figure is 0 while the layer still counts the stations and posts.
    for (const id of ["u-01", "u-02", "u-04", "u-05", "u-06"]) m.handle("set_unit_status", { args: { unit_id: id, to: "busy" } });
    rerender(<CoverageControl lang="en" on onToggle={onToggle} coverage={m.handle("coverage") as never} />);
    expect(container.querySelector("#coverage-figure")?.textContent).toBe("3-min coverage 0%");
    expect(container.querySelector("#coverage-layer")?.textContent).toBe("with stations and posts: 3 min 12% (the layer)");
    expect(container.querySelector(".coverage-sources")?.textContent).toBe("3 stations and posts · 0 available units · 0 closures avoided");
    // No pack: the cause translated, the backend's English as a tooltip.
    const none = { ...(m.handle("coverage") as CoverageViewT), unavailable: "no area pack is open, so there is no road network to route on" };
    rerender(<CoverageControl lang="zh" on onToggle={onToggle} coverage={none} />);
    expect(container.querySelector("#coverage-unavailable")?.textContent).toBe("无法计算覆盖：未打开区域数据包");
    expect(container.querySelector("#coverage-unavailable")?.getAttribute("title")).toBe(none.unavailable);
    expect(container.querySelector("#coverage-figure")).toBeNull();
  });
});
