// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Settings } from "../bindings";
import { MockBackend } from "../mock/backend";
import { conflictedIds } from "../sync";
import { IncidentDetailPanel, type IncidentActions } from "./IncidentDetailPanel";
import { IncidentQueue } from "./IncidentQueue";
import { SettingsPanel } from "./SettingsPanel";
import { SyncIndicator } from "./SyncIndicator";
import { SyncPanel, type SyncPanelProps } from "./SyncPanel";
import { describeEvent } from "./timeline";
import { UnitBoard } from "./UnitBoard";

const NOW = Date.parse("2026-11-29T10:00:00Z");
afterEach(cleanup);

function fake() {
  return new MockBackend({ now: () => NOW, sync: { offlineMs: 1000, syncingMs: 1000, offlineSinceAgoS: 420 } });
}

describe("SyncIndicator", () => {
  it("shows offline in red with the lanes, the last sync and both badges; a click opens the panel", () => {
    const m = fake();
    const onClick = vi.fn();
    const { container } = render(<SyncIndicator lang="zh" now={NOW} status={m.syncStatus()} failed={false} open={false} onClick={onClick} />);
    const b = container.querySelector<HTMLElement>("#sync-indicator")!;
    expect(b.dataset.syncState).toBe("offline");
    expect(b.dataset.tone).toBe("offline-red");
    expect(b.querySelector("[data-sync-text]")?.textContent).toMatch(/^离线 自 \d{2}:\d{2}$/);
    expect(b.querySelector("[data-sync-lanes]")?.textContent).toBe("紧急 4 · 备注 2 · 位置 180");
    expect(b.querySelector("#conflict-badge")?.textContent).toBe("冲突 3");
    expect(b.querySelector("#parked-badge")?.textContent).toBe("需处理 2");
    expect(b.title).toContain("connection refused");
    fireEvent.click(b);
    expect(onClick).toHaveBeenCalled();
  });

  it("offers a sign-in button beside it while the server wants an online sign-in, and only then", () => {
    const onSignIn = vi.fn();
    const onClick = vi.fn();
    const st = { ...fake().syncStatus(), state: "sign_in_required" as const };
    const { container, rerender } = render(
      <SyncIndicator lang="zh" now={NOW} status={st} failed={false} open={false} onClick={onClick} onSignIn={onSignIn} />,
    );
    expect(container.querySelector<HTMLElement>("#sync-indicator")?.dataset.syncState).toBe("sign_in_required");
    expect(container.querySelector("[data-sync-text]")?.textContent).toBe("需要联网登录以同步");
    const button = container.querySelector<HTMLButtonElement>("#sync-sign-in")!;
    expect(button.textContent).toBe("登录");
    fireEvent.click(button);
    expect(onSignIn).toHaveBeenCalledTimes(1);
    expect(onClick).not.toHaveBeenCalled();
    // Revoked: said so, nothing to sign in to.
    rerender(<SyncIndicator lang="en" now={NOW} status={{ ...st, state: "device_revoked" }} failed={false} open={false} onClick={onClick} onSignIn={onSignIn} />);
    expect(container.querySelector("[data-sync-text]")?.textContent).toBe("This device was revoked");
    expect(container.querySelector<HTMLElement>("#sync-indicator")?.dataset.tone).toBe("offline-red");
    expect(container.querySelector("#sync-sign-in")).toBeNull();
    // Plain offline: no sign-in button either.
    rerender(<SyncIndicator lang="en" now={NOW} status={fake().syncStatus()} failed={false} open={false} onClick={onClick} onSignIn={onSignIn} />);
    expect(container.querySelector("#sync-sign-in")).toBeNull();
  });

  it("says working alone with no lanes and no badges when nothing is open", () => {
    const st = { ...fake().syncStatus(), state: "disabled" as const, conflicts: 0, parked: 0 };
    const { container } = render(<SyncIndicator lang="en" now={NOW} status={st} failed={false} open={false} onClick={() => {}} />);
    expect(container.querySelector("[data-sync-text]")?.textContent).toBe("Working alone");
    expect(container.querySelector("[data-sync-lanes]")).toBeNull();
    expect(container.querySelector("#conflict-badge")).toBeNull();
    expect(container.querySelector("#parked-badge")).toBeNull();
  });

  it("says so when the status cannot be read rather than showing an old state", () => {
    const { container } = render(<SyncIndicator lang="en" now={NOW} status={fake().syncStatus()} failed open={false} onClick={() => {}} />);
    expect(container.querySelector("#sync-indicator")?.getAttribute("data-tone")).toBe("offline-red");
    expect(container.querySelector("[data-sync-text]")?.textContent).toBe("The sync status could not be read");
  });
});

describe("SyncPanel", () => {
  function props(over: Partial<SyncPanelProps> = {}): SyncPanelProps {
    const m = fake();
    return {
      lang: "en",
      now: NOW,
      status: m.syncStatus(),
      conflicts: m.conflictList,
      parked: m.parked,
      incidents: m.consoleState().incidents,
      units: m.consoleState().units,
      busy: false,
      onKeep: vi.fn(),
      onOpenIncident: vi.fn(),
      onOpenUnit: vi.fn(),
      onDismiss: vi.fn(),
      ...over,
    };
  }

  it("details the link: state, server, per-lane counts and the last error", () => {
    const { container } = render(<SyncPanel {...props()} />);
    const summary = container.querySelector("[data-sync-summary='offline']")!;
    expect(summary.textContent).toContain("http://10.20.0.5:8443");
    expect(summary.textContent).toContain("offline for 7 min");
    expect([...summary.querySelectorAll("[data-lane]")].map((l) => l.textContent)).toEqual(["Critical 4", "Notes 2", "Positions 180"]);
    expect(summary.querySelector("[data-sync-error]")?.textContent).toMatch(/connection refused/);
  });

  it("shows both sides of each conflict in words, marks the shown one, and keeps a side with the note", () => {
    const p = props();
    const { container } = render(<SyncPanel {...p} />);
    const field = container.querySelector<HTMLElement>("[data-conflict-kind='field']")!;
    expect(field.textContent).toContain("Conflicting change");
    expect(field.textContent).toContain("#2026-0002");
    expect([...field.querySelectorAll("[data-side-value]")].map((e) => e.textContent)).toEqual(["P2 urgent", "P1 emergency"]);
    expect(field.querySelector("[data-shown='true'] [data-side-value]")?.textContent).toBe("P1 emergency");
    expect(field.querySelector("[data-conflict-side='op-remote-prio']")?.textContent).toMatch(/王建国, \d{2}\/\d{2}\/2026, \d{2}:\d{2}:\d{2}/);
    fireEvent.change(field.querySelector("input.conflict-note")!, { target: { value: "caller confirmed" } });
    fireEvent.click(field.querySelector("[data-keep-op='op-remote-prio']")!);
    expect(p.onKeep).toHaveBeenCalledWith(p.conflicts[0]!.id, "op-remote-prio", "caller confirmed");
    const late = container.querySelector<HTMLElement>("[data-conflict-kind='edit_after_close']")!;
    expect([...late.querySelectorAll("[data-side-value]")].map((e) => e.textContent)).toEqual([
      "Closed: Report taken — 已登记，转刑侦",
      "Description 嫌疑人骑黑色电动车向北逃离",
    ]);
    // A double assignment's sides name the incidents from the live picture.
    const double = container.querySelector<HTMLElement>("[data-conflict-kind='double_assignment']")!;
    expect([...double.querySelectorAll("[data-side-value]")].map((e) => e.textContent)).toEqual([
      "巡03 assigned to #2026-0002 Fire",
      "巡03 assigned to #2026-0001 Traffic accident",
    ]);
    fireEvent.click(screen.getByRole("button", { name: "巡03" }));
    expect(p.onOpenUnit).toHaveBeenCalledWith("u-03");
  });

  it("lists the refused ops with the server's reason, and says when nothing is open", () => {
    const { container, rerender } = render(<SyncPanel {...props()} />);
    const parked = container.querySelectorAll("#parked-ops [data-parked-op]");
    expect(parked).toHaveLength(2);
    expect(parked[1]?.textContent).toContain("Notes");
    expect(parked[1]?.querySelector("[data-parked-reason]")?.textContent).toBe(
      "Server's reason: op schema 2 is newer than this server (1); upgrade the server",
    );
    rerender(<SyncPanel {...props({ conflicts: [], parked: [] })} />);
    expect(container.querySelector("#no-conflicts")?.textContent).toBe("No open conflicts");
    expect(container.querySelector("#parked-ops")).toBeNull();
  });

  it("keep buttons wait while an action runs", () => {
    const { container } = render(<SyncPanel {...props({ busy: true })} />);
    const buttons = [...container.querySelectorAll<HTMLButtonElement>("[data-keep-op]")];
    expect(buttons).toHaveLength(6);
    expect(buttons.every((b) => b.disabled)).toBe(true);
  });
});

describe("SettingsPanel server URL", () => {
  const base: Settings = { language: "en", theme: "auto", stale_after_s: 120, server_url: null };

  it("refuses a URL that is not http(s)://host[:port] and saves a good one normalised", () => {
    const onSave = vi.fn();
    const { container } = render(<SettingsPanel lang="en" settings={base} busy={false} onSave={onSave} onDismiss={() => {}} />);
    const input = container.querySelector<HTMLInputElement>("#settings-server-url")!;
    const save = container.querySelector<HTMLButtonElement>("#settings-save")!;
    fireEvent.change(input, { target: { value: "10.20.0.5:8443" } });
    expect(save.disabled).toBe(true);
    expect(input.getAttribute("aria-invalid")).toBe("true");
    expect(container.querySelector("#settings-server-url-help")?.textContent).toMatch(/^Enter http:\/\/ or https:\/\//);
    fireEvent.change(input, { target: { value: " http://10.20.0.5:8443/ " } });
    expect(save.disabled).toBe(false);
    fireEvent.click(save);
    expect(onSave).toHaveBeenCalledWith({ ...base, server_url: "http://10.20.0.5:8443" });
  });

  it("says when --server overrides the stored URL for this run", () => {
    const { container, rerender } = render(
      <SettingsPanel lang="en" settings={base} busy={false} onSave={() => {}} onDismiss={() => {}} activeServerUrl="http://10.1.1.1:8443" />,
    );
    expect(container.querySelector("#settings-server-override")?.textContent).toMatch(/^This run syncs with http:\/\/10\.1\.1\.1:8443 \(--server/);
    rerender(
      <SettingsPanel lang="en" settings={{ ...base, server_url: "http://10.1.1.1:8443" }} busy={false} onSave={() => {}} onDismiss={() => {}} activeServerUrl="http://10.1.1.1:8443" />,
    );
    expect(container.querySelector("#settings-server-override")).toBeNull();
  });

  it("an empty field means working alone", () => {
    const onSave = vi.fn();
    const { container } = render(
      <SettingsPanel lang="zh" settings={{ ...base, server_url: "http://sync.local:8443" }} busy={false} onSave={onSave} onDismiss={() => {}} />,
    );
    const input = container.querySelector<HTMLInputElement>("#settings-server-url")!;
    expect(input.value).toBe("http://sync.local:8443");
    fireEvent.change(input, { target: { value: "" } });
    fireEvent.click(container.querySelector("#settings-save")!);
    expect(onSave).toHaveBeenCalledWith({ ...base, server_url: null });
  });
});

describe("conflicts where the dispatcher works", () => {
  it("marks the incidents and units concerned in the queue and on the board", () => {
    const m = fake();
    const state = m.consoleState();
    const ids = conflictedIds(m.conflictList);
    const { container } = render(
      <>
        <IncidentQueue lang="zh" now={NOW} incidents={state.incidents} selectedId={null} showClosed onShowClosed={() => {}} onOpen={() => {}} conflicted={ids.incidents} />
        <UnitBoard lang="zh" now={NOW} units={state.units} facilities={state.facilities} staleAfterS={120} selectedId={null} onOpenUnit={() => {}} onOpenIncident={() => {}} conflicted={ids.units} />
      </>,
    );
    const marked = [...container.querySelectorAll("[data-incident-id]")].filter((r) => r.querySelector("[data-conflict-mark]"));
    // The fire (priority conflict) and the closed theft (edited after closing).
    expect(marked.map((r) => r.querySelector(".muted")?.textContent)).toEqual([" #2026-0002", " #2026-0004"]);
    expect(container.querySelector("[data-unit-id='u-03'] [data-conflict-mark]")?.textContent).toBe("冲突");
    expect(container.querySelectorAll("[data-unit-id] [data-conflict-mark]")).toHaveLength(1);
  });

  it("the incident card says how many conflicts are open and leads to them", () => {
    const m = fake();
    const fire = m.conflictList[0]!.incident_id!;
    const onReview = vi.fn();
    const actions = new Proxy({}, { get: () => vi.fn() }) as IncidentActions;
    const { container, rerender } = render(
      <IncidentDetailPanel lang="en" now={NOW} staleAfterS={120} detail={m.detail(fire)} units={m.consoleState().units} busy={false} actions={actions} conflicts={1} onReviewConflicts={onReview} />,
    );
    expect(container.querySelector("#incident-conflicts")?.textContent).toContain("1 open sync conflict(s) about this incident");
    fireEvent.click(screen.getByRole("button", { name: "Review" }));
    expect(onReview).toHaveBeenCalled();
    rerender(<IncidentDetailPanel lang="en" now={NOW} staleAfterS={120} detail={m.detail(fire)} units={m.consoleState().units} busy={false} actions={actions} />);
    expect(container.querySelector("#incident-conflicts")).toBeNull();
  });

  it("a resolution in the timeline names the kind of conflict", () => {
    expect(describeEvent("zh", { kind: "conflict_resolved", conflict_id: "closed:i:c:e", note: "已核实" })).toBe("冲突已处理：结案后修改 已核实");
    expect(describeEvent("en", { kind: "conflict_resolved", conflict_id: "double:u-03", note: "" })).toBe("Conflict resolved: Unit assigned twice");
    expect(describeEvent("en", { kind: "conflict_resolved", conflict_id: "weird", note: "" })).toBe("Conflict resolved: weird");
  });
});
