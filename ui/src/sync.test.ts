import { describe, expect, it } from "vitest";
import type { ConflictView, ParkedOp, ResolveConflict, SyncStatus } from "./bindings";
import { MockBackend } from "./mock/backend";
import {
  conflictExplanation,
  conflictSubject,
  formatHm,
  indicator,
  laneText,
  parseServerUrl,
  pendingTotal,
  registerValueText,
  sideText,
  SyncStore,
} from "./sync";

const NOW = Date.parse("2026-11-29T06:30:00Z"); // 14:30 in Beijing
const TZ = "Asia/Shanghai";

function status(over: Partial<SyncStatus> = {}): SyncStatus {
  return {
    state: "online",
    server_url: "http://10.20.0.5:8443",
    offline_since: null,
    last_sync: "2026-11-29T06:29:58Z",
    pending: { critical: 0, notes: 0, positions: 0 },
    parked: 0,
    conflicts: 0,
    deferred: 0,
    last_error: null,
    ...over,
  };
}

describe("the connection indicator", () => {
  it("says sign in online to sync (amber, the outbox waits) and this device was revoked (red)", () => {
    const signIn = status({ state: "sign_in_required", pending: { critical: 2, notes: 0, positions: 0 } });
    expect(indicator("zh", signIn, NOW, TZ)).toMatchObject({ tone: "offline-amber", text: "需要联网登录以同步", lanes: "紧急 2" });
    expect(indicator("en", signIn, NOW, TZ).text).toBe("Sign in online to sync");
    const revoked = status({ state: "device_revoked" });
    expect(indicator("zh", revoked, NOW, TZ)).toMatchObject({ tone: "offline-red", text: "本设备已被吊销" });
    expect(indicator("en", revoked, NOW, TZ).text).toBe("This device was revoked");
  });

  it("says online with the last sync time", () => {
    expect(indicator("zh", status(), NOW, TZ)).toEqual({ tone: "online", text: "在线", lanes: "", lastSync: "上次同步 14:29" });
    expect(indicator("en", status(), NOW, TZ).lastSync).toBe("Last sync 14:29");
  });

  it("says syncing with the pending total and the non-empty lanes in push order", () => {
    const s = status({ state: "syncing", pending: { critical: 3, notes: 0, positions: 140 } });
    expect(indicator("zh", s, NOW, TZ)).toMatchObject({ tone: "syncing", text: "同步中 · 待发送 143", lanes: "紧急 3 · 位置 140" });
    expect(indicator("en", s, NOW, TZ)).toMatchObject({ text: "Syncing · 143 to send", lanes: "Critical 3 · Positions 140" });
    expect(laneText("zh", { critical: 1, notes: 2, positions: 3 })).toBe("紧急 1 · 备注 2 · 位置 3");
    expect(pendingTotal({ critical: 1, notes: 2, positions: 3 })).toBe(6);
  });

  it("says offline since HH:MM, amber for a short outage and red after five minutes", () => {
    const short = status({ state: "offline", offline_since: "2026-11-29T06:27:00Z", last_sync: "2026-11-29T06:27:00Z" });
    expect(indicator("zh", short, NOW, TZ)).toMatchObject({ tone: "offline-amber", text: "离线 自 14:27" });
    const long = status({ state: "offline", offline_since: "2026-11-29T06:25:00Z" });
    expect(indicator("zh", long, NOW, TZ)).toMatchObject({ tone: "offline-red", text: "离线 自 14:25" });
    expect(indicator("en", long, NOW, TZ).text).toBe("Offline since 14:25");
    // Since yesterday: the date is shown too, so it is not read as a few minutes.
    const overnight = status({ state: "offline", offline_since: "2026-11-28T15:10:00Z" });
    expect(indicator("zh", overnight, NOW, TZ).text).toBe("离线 自 11/28 23:10");
    // No start time known: red, no time.
    expect(indicator("en", status({ state: "offline", last_sync: null }), NOW, TZ)).toMatchObject({
      tone: "offline-red",
      text: "Offline",
      lastSync: "Last sync never",
    });
  });

  it("says working alone when no server is set", () => {
    expect(indicator("zh", status({ state: "disabled", server_url: null }), NOW, TZ)).toEqual({ tone: "alone", text: "工作在单机模式", lanes: "", lastSync: "" });
    expect(indicator("en", status({ state: "disabled" }), NOW, TZ).text).toBe("Working alone");
  });

  it("formats wall times in local time of day", () => {
    expect(formatHm("2026-11-29T01:05:00Z", "en", NOW, TZ)).toBe("09:05");
    expect(formatHm("not a time", "en", NOW, TZ)).toBe("not a time");
  });
});

describe("conflict sides in words", () => {
  const field: ConflictView = {
    id: "field:i1:priority",
    kind: "field",
    register: "priority",
    incident_id: "i1",
    incident_number: "2026-0002",
    unit_id: null,
    callsign: null,
    sides: [
      { op_id: "a", user: "王建国", at: "2026-11-29T06:20:00Z", summary: "P2", value: "P2", shown: false, assignment_id: null },
      { op_id: "b", user: "dispatcher", at: "2026-11-29T06:21:00Z", summary: "P1", value: "P1", shown: true, assignment_id: null },
    ],
  };

  it("renders register values in the console's language", () => {
    expect(sideText("zh", field, field.sides[0]!)).toBe("P2 急");
    expect(sideText("en", field, field.sides[1]!)).toBe("P1 emergency");
    expect(registerValueText("zh", "incident_type", "fire")).toBe("火警");
    expect(registerValueText("en", "unit_status", "en_route")).toBe("En route");
    expect(registerValueText("en", "location", { lat: 42.5, lon: 1.52 })).toBe("42.50000, 1.52000");
    expect(registerValueText("zh", "closure", { disposition: "arrest", summary: "" })).toBe("结案：已抓获");
    expect(registerValueText("en", "closure", { disposition: "arrest", summary: " two held " })).toBe("Closed: Arrest — two held");
    // A value this build does not know (a newer console's type) falls back to the summary.
    expect(registerValueText("en", "incident_type", "drone_sighting")).toBeNull();
    expect(sideText("en", { ...field, register: "incident_type" }, { ...field.sides[0]!, value: "drone_sighting", summary: "drone sighting" })).toBe(
      "drone sighting",
    );
  });

  it("names what the conflict is about and explains it", () => {
    expect(conflictSubject(field)).toBe("#2026-0002");
    expect(conflictExplanation("zh", field)).toContain("等级");
    const double: ConflictView = { ...field, id: "double:u-03", kind: "double_assignment", register: null, incident_id: null, incident_number: null, unit_id: "u-03", callsign: "巡03" };
    expect(conflictSubject(double)).toBe("巡03");
    expect(conflictExplanation("en", double)).toMatch(/^巡03 was assigned to two incidents/);
    // A double assignment's sides name the incident from the live picture, else the backend's summary.
    const m = new MockBackend();
    const st = m.consoleState();
    const ctx = { incidents: new Map(st.incidents.map((i) => [i.id, i])), units: new Map(st.units.map((u) => [u.id, u])) };
    const accident = st.incidents.find((i) => i.incident_type === "traffic_accident")!;
    const asg = { ...field.sides[0]!, value: { assignment_id: "a1", incident_id: accident.id, unit_id: "u-03" }, summary: "巡03 → #2026-0001" };
    expect(sideText("zh", double, asg, ctx)).toBe("巡03 派往 #2026-0001 交通事故");
    expect(sideText("zh", double, asg)).toBe("巡03 → #2026-0001");
    expect(sideText("zh", double, { ...asg, value: { ...asg.value, incident_id: "gone" } }, ctx)).toBe("巡03 → #2026-0001");
    const late: ConflictView = { ...field, kind: "edit_after_close", register: null };
    expect(sideText("zh", late, { ...field.sides[0]!, value: { disposition: "report_taken", summary: "" } })).toBe("结案：已登记");
    expect(
      sideText("en", late, { ...field.sides[0]!, value: { incident_type: null, priority: "P1", location: null, address: null, description: null } }),
    ).toBe("Priority P1");
  });
});

describe("the server URL rule", () => {
  it("accepts empty or http(s)://host[:port] and normalises it", () => {
    expect(parseServerUrl("")).toBeNull();
    expect(parseServerUrl("   ")).toBeNull();
    expect(parseServerUrl("http://10.20.0.5:8443")).toBe("http://10.20.0.5:8443");
    expect(parseServerUrl(" https://Sync.GA.local/ ")).toBe("https://sync.ga.local");
    expect(parseServerUrl("http://[fd00::5]:8080")).toBe("http://[fd00::5]:8080");
    expect(parseServerUrl("http://localhost:08443")).toBe("http://localhost:8443");
  });

  it("refuses anything else", () => {
    for (const bad of [
      "10.20.0.5:8443",
      "ftp://host",
      "http://",
      "http://host:0",
      "http://host:65536",
      "http://host/v1",
      "http://host?x=1",
      "http://user@host",
      "http://-bad-.example",
      "http://300.1.1.1",
      "http://1.2.3",
      "http://ho st",
      "http://host:port",
    ]) {
      expect(parseServerUrl(bad), bad).toBeUndefined();
    }
  });
});

describe("SyncStore", () => {
  function api(st: SyncStatus, list: ConflictView[] = [], parked: ParkedOp[] = []) {
    const calls: string[] = [];
    return {
      calls,
      api: {
        status: async () => (calls.push("status"), st),
        conflicts: async () => (calls.push("conflicts"), list),
        parked: async () => (calls.push("parked"), parked),
        resolve: async (a: ResolveConflict) => (calls.push(`resolve ${a.conflict_id} ${a.keep_op_id} "${a.note}"`), [] as ConflictView[]),
      },
    };
  }

  it("reads the lists only when the status counts some", async () => {
    const quiet = api(status());
    const s = new SyncStore(quiet.api);
    await s.refresh();
    expect(quiet.calls).toEqual(["status"]);
    expect(s.get().status?.state).toBe("online");

    const m = new MockBackend();
    const busy = api(m.syncStatus(), m.conflictList, m.parked);
    const s2 = new SyncStore(busy.api);
    await s2.refresh();
    expect(busy.calls).toEqual(["status", "conflicts", "parked"]);
    expect(s2.get().conflicts.map((c) => c.kind)).toEqual(["field", "double_assignment", "edit_after_close"]);
    expect(s2.get().parked).toHaveLength(2);
  });

  it("resolving shows the backend's answer and trims the note; a failed read is kept until the next good one", async () => {
    const a = api(status({ conflicts: 1 }));
    const s = new SyncStore(a.api);
    await s.resolve("double:u-03", "op-b", "  radio check ");
    expect(a.calls[0]).toBe('resolve double:u-03 op-b "radio check"');
    let fail = true;
    const flaky = new SyncStore({ ...a.api, status: async () => (fail ? Promise.reject(new Error("ipc down")) : status()) });
    await flaky.refresh();
    expect((flaky.get().error as Error).message).toBe("ipc down");
    fail = false;
    await flaky.refresh();
    expect(flaky.get().error).toBeNull();
  });
});

describe("the fake backend's sync script", () => {
  it("goes offline → syncing (critical drains first) → online, and counts writes made offline", () => {
    let now = NOW;
    const m = new MockBackend({ now: () => now, sync: { offlineMs: 1000, syncingMs: 1000, offlineSinceAgoS: 600 } });
    const off = m.syncStatus();
    expect(off).toMatchObject({ state: "offline", offline_since: "2026-11-29T06:20:00.000Z", pending: { critical: 4, notes: 2, positions: 180 }, conflicts: 3, parked: 2 });
    expect(off.last_error).toMatch(/connection refused/);
    m.handle("add_note", { args: { incident_id: m.consoleState().incidents[0]!.id, text: "x" } });
    expect(m.syncStatus().pending.notes).toBe(3);
    now += 1100; // 10 % of 187 ops sent: 18 — the 4 critical, 3 notes, 11 positions.
    expect(m.syncStatus()).toMatchObject({ state: "syncing", offline_since: null, pending: { critical: 0, notes: 0, positions: 169 } });
    now += 1000;
    expect(m.syncStatus()).toMatchObject({ state: "online", pending: { critical: 0, notes: 0, positions: 0 }, last_error: null });
    // No server: alone.
    m.handle("save_settings", { args: { ...m.settings, server_url: null } });
    expect(m.syncStatus().state).toBe("disabled");
    expect(() => m.handle("save_settings", { args: { ...m.settings, server_url: "10.0.0.1" } })).toThrow();
  });

  it("resolves each kind the way the console writes it", () => {
    const m = new MockBackend();
    const [field, double, late] = m.conflictList;
    const fireId = field!.incident_id!;
    // Field: keeping the other console's P2 writes it again.
    let left = m.handle("resolve_conflict", { args: { conflict_id: field!.id, keep_op_id: "op-remote-prio", note: "" } }) as ConflictView[];
    expect(left).toHaveLength(2);
    expect(m.detail(fireId).summary.priority).toBe("P2");
    // Double: keeping the other console's assignment moves 巡03 to the accident.
    left = m.handle("resolve_conflict", { args: { conflict_id: double!.id, keep_op_id: "op-remote-assign", note: "" } }) as ConflictView[];
    const u = m.consoleState().units.find((x) => x.id === "u-03")!;
    expect(u.incident_number).toBe("2026-0001");
    expect(m.detail(fireId).timeline.map((e) => e.event.kind)).toContain("unit_released");
    // Edit after close: a conflict.resolve entry with the note.
    left = m.handle("resolve_conflict", { args: { conflict_id: late!.id, keep_op_id: "op-local-close", note: "已核实" } }) as ConflictView[];
    expect(left).toEqual([]);
    expect(m.detail(late!.incident_id!).timeline.at(-1)?.event).toEqual({ kind: "conflict_resolved", conflict_id: late!.id, note: "已核实" });
    expect(m.syncStatus().conflicts).toBe(0);
    expect(() => m.handle("resolve_conflict", { args: { conflict_id: late!.id, keep_op_id: "x", note: "" } })).toThrow();
  });
});
