// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MockBackend } from "../mock/backend";
import { IncidentDetailPanel, type IncidentActions } from "./IncidentDetailPanel";
import { IncidentQueue } from "./IncidentQueue";
import { PackErrorScreen } from "./PackErrorScreen";
import { UnitBoard } from "./UnitBoard";

const NOW = Date.parse("2026-11-29T10:00:00Z");
afterEach(cleanup);

function fake() {
  return new MockBackend({ now: () => NOW });
}

describe("IncidentQueue", () => {
  it("lists open incidents by priority then age, with counts per status", () => {
    const state = fake().consoleState();
    const onOpen = vi.fn();
    const { container } = render(
      <IncidentQueue lang="en" now={NOW} incidents={state.incidents} selectedId={null} showClosed={false} onShowClosed={() => {}} onOpen={onOpen} />,
    );
    const rows = [...container.querySelectorAll<HTMLElement>("[data-incident-id]")];
    expect(rows.map((r) => r.querySelector(".prio-badge")?.textContent)).toEqual(["P1", "P2", "P3"]);
    expect(rows[0]?.textContent).toContain("Fire");
    expect(rows[0]?.className).toContain("unack-p1");
    // The fire was created 120 s before NOW.
    const age = rows[0]!.querySelector(".queue-age")!;
    expect(age.textContent).toBe("2:00");
    expect(age.getAttribute("title")).toMatch(/^Age · \d{2}\/\d{2}\/2026, \d{2}:\d{2}:\d{2}$/);
    expect(container.querySelector("[data-status-count='pending']")?.textContent).toContain("2");
    expect(container.querySelector("[data-status-count='dispatched']")?.textContent).toContain("1");
    fireEvent.click(rows[1]!);
    expect(onOpen).toHaveBeenCalledWith(state.incidents.find((i) => i.priority === "P2")?.id);
  });
});

describe("UnitBoard", () => {
  it("shows callsign, type, home station, status, ticking time in status and incident", () => {
    const state = fake().consoleState();
    const props = {
      lang: "zh" as const,
      units: state.units,
      facilities: state.facilities,
      staleAfterS: 120,
      selectedId: null,
      onOpenUnit: () => {},
      onOpenIncident: () => {},
    };
    const { container, rerender } = render(<UnitBoard {...props} now={NOW} />);
    const row = container.querySelector<HTMLElement>("[data-unit-id='u-03']")!;
    expect(row.textContent).toContain("巡03");
    expect(row.textContent).toContain("巡逻车");
    expect(row.textContent).toContain("东区派出所");
    expect(row.querySelector("[data-unit-status]")?.textContent).toBe("已派警");
    expect(row.querySelector("[data-time-in-status]")?.textContent).toBe("1:30");
    expect(row.textContent).toContain("#2026-0002");
    // One second later the clock has ticked.
    rerender(<UnitBoard {...props} now={NOW + 1000} />);
    expect(container.querySelector("[data-unit-id='u-03'] [data-time-in-status]")?.textContent).toBe("1:31");
    // u-04's fix is 400 s old: flagged stale.
    expect(container.querySelector("[data-unit-id='u-04'] [data-stale]")?.textContent).toBe("6 分钟");
    expect(container.querySelector("[data-unit-id='u-04'] [data-stale]")?.getAttribute("title")).toMatch(/^定位时间 2026\/11\/29 \d{2}:53:20（6 分钟前） · 定位过期$/);
    expect(container.querySelector("[data-unit-id='u-04'] [data-fix-age]")?.getAttribute("data-age-tone")).toBe("stale");
    expect(container.querySelector("[data-unit-id='u-01'] [data-stale]")).toBeNull();
    // Every row carries its fix age, fresh ones too (one second after NOW: u-01 6 s, u-05 31 s).
    const ages = (id: string) => container.querySelector(`[data-unit-id='${id}'] [data-fix-age]`);
    expect(ages("u-01")?.textContent).toBe("6 秒");
    expect(ages("u-01")?.getAttribute("data-age-tone")).toBe("fresh");
    expect(ages("u-05")?.textContent).toBe("31 秒");
    // Past half the 120 s threshold the age turns amber.
    rerender(<UnitBoard {...props} now={NOW + 61_000} />);
    expect(ages("u-06")?.textContent).toBe("1 分钟");
    expect(ages("u-06")?.getAttribute("data-age-tone")).toBe("aging");
  });
});

describe("IncidentDetailPanel", () => {
  it("shows the fields, assigned units with legal status buttons, and the timeline", () => {
    const m = fake();
    const fire = m.consoleState().incidents.find((i) => i.priority === "P1")!;
    const detail = m.detail(fire.id);
    const actions: IncidentActions = {
      acknowledge: vi.fn(),
      setType: vi.fn(),
      setPriority: vi.fn(),
      assign: vi.fn(),
      release: vi.fn(),
      setUnitStatus: vi.fn(),
      addNote: vi.fn(async () => true),
      close: vi.fn(),
      dismiss: vi.fn(),
    };
    const { container } = render(<IncidentDetailPanel lang="en" now={NOW} staleAfterS={120} detail={detail} units={m.consoleState().units} busy={false} actions={actions} />);
    const panel = container.querySelector<HTMLElement>("#incident-detail")!;
    expect(panel.textContent).toContain("Carrer Prat de la Creu, Escaldes-Engordany");
    expect(panel.textContent).toContain("Smoke from a shop");
    const entries = [...panel.querySelectorAll("[data-timeline-entry]")].map((e) => e.getAttribute("data-timeline-entry"));
    expect(entries).toEqual(["created", "unit_assigned"]);
    expect(panel.querySelector("[data-timeline-entry='unit_assigned']")?.textContent).toContain("巡03 assigned");
    // 巡03 is dispatched: en route and on scene are offered, plus release.
    const assigned = panel.querySelector("[data-assignment-unit='u-03']")!;
    expect([...assigned.querySelectorAll("[data-status-to]")].map((b) => b.getAttribute("data-status-to"))).toEqual(["en_route", "on_scene"]);
    fireEvent.click(assigned.querySelector("[data-status-to='on_scene']")!);
    expect(actions.setUnitStatus).toHaveBeenCalledWith("u-03", "on_scene");
    fireEvent.click(screen.getByText("Acknowledge (A)"));
    expect(actions.acknowledge).toHaveBeenCalled();
    // Only available units can be assigned.
    const options = [...panel.querySelectorAll<HTMLOptionElement>("#assign-unit option")].map((o) => o.value).filter(Boolean);
    expect(options).not.toContain("u-03");
    expect(options).toHaveLength(5);
  });
});

describe("PackErrorScreen", () => {
  it("names the file, the problem and the hint", () => {
    render(<PackErrorScreen lang="zh" problem={{ path: "/tmp/x.outpost", problem: "not a SQLite file", hint: "run --demo" }} />);
    expect(screen.getByRole("alert").textContent).toContain("/tmp/x.outpost");
    expect(screen.getByText("not a SQLite file")).toBeTruthy();
    expect(screen.getByText("run --demo")).toBeTruthy();
    expect(screen.getByText("无法打开区域地图包")).toBeTruthy();
  });
});
