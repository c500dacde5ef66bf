import { describe, expect, it } from "vitest";
import type { ConsoleState } from "./bindings";
import { ConsoleStore } from "./store";

const st = (revision: number): ConsoleState => ({ revision, units: [], incidents: [], facilities: [] });

describe("ConsoleStore", () => {
  it("never goes back to an older revision", () => {
    const s = new ConsoleStore(async () => st(1));
    s.apply(st(5));
    s.apply(st(3));
    expect(s.get()?.revision).toBe(5);
    s.apply(st(6));
    expect(s.get()?.revision).toBe(6);
  });

  it("collapses refreshes asked for while one runs into one more fetch", async () => {
    let calls = 0;
    const s = new ConsoleStore(async () => {
      calls += 1;
      await new Promise((r) => setTimeout(r, 5));
      return st(calls);
    });
    let notified = 0;
    s.subscribe(() => (notified += 1));
    await Promise.all([s.refresh(), s.refresh(), s.refresh()]);
    expect(calls).toBe(2);
    expect(s.get()?.revision).toBe(2);
    expect(notified).toBe(2);
  });

  it("keeps the last state and reports the error when a fetch fails", async () => {
    let fail = false;
    const s = new ConsoleStore(async () => {
      if (fail) throw { code: "storage", message: "disk full" };
      return st(1);
    });
    await s.refresh();
    fail = true;
    await s.refresh();
    expect(s.get()?.revision).toBe(1);
    expect(s.lastError()).toEqual({ code: "storage", message: "disk full" });
  });

  it("clears the error and tells subscribers once a fetch works again", async () => {
    let fail = true;
    const s = new ConsoleStore(async () => {
      if (fail) throw { code: "storage", message: "database is locked" };
      return st(1);
    });
    let notified = 0;
    s.subscribe(() => (notified += 1));
    await s.refresh();
    expect(s.lastError()).toEqual({ code: "storage", message: "database is locked" });
    expect(notified).toBe(1);
    fail = false;
    await s.refresh();
    expect(s.lastError()).toBeNull();
    expect(s.get()?.revision).toBe(1);
    expect(notified).toBe(2);
  });
});
