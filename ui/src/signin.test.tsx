// @vitest-environment jsdom
// The sign-in screens (issue 6) against the fake backend through the real IPC path (mockIPC):
// first account with the TOTP secret as text and QR code, enrollment, sign-in with the known
// users, the lock screen, a revoked device; the idle lock; the role-aware console.
import { act, cleanup, fireEvent, render, renderHook, screen, waitFor } from "@testing-library/react";
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App, LANG_KEY } from "./App";
import { permissionsOf, unlockNeedsCode, useIdleLock } from "./auth";
import type { AuthStatus } from "./bindings";
import { MOCK_PASSWORD, MOCK_TOTP_CODE, MOCK_TOTP_SECRET } from "./mock/auth";
import { installMockBackend } from "./mock/install";
import { groupSecret } from "./SignIn";

vi.mock("./map/MapView", () => ({ MapView: () => <div data-testid="map" /> }));

afterEach(() => {
  cleanup();
  clearMocks();
  vi.useRealTimers();
  window.localStorage.clear();
});

const type = (el: Element | null, value: string) => fireEvent.change(el!, { target: { value } });
const q = <T extends Element = HTMLElement>(c: HTMLElement, sel: string) => c.querySelector<T>(sel);
/** Waits until `sel` is in `c` and returns it. */
const found = <T extends Element = HTMLElement>(c: HTMLElement, sel: string) =>
  waitFor(() => {
    const el = c.querySelector<T>(sel);
    if (!el) throw new Error(`${sel} is not shown`);
    return el;
  });
/** The console is up: the fake's three open incidents are in the queue. */
const consoleShown = (c: HTMLElement) => waitFor(() => expect(c.querySelectorAll("[data-incident-id]")).toHaveLength(3));

describe("sign-in screens", () => {
  it("setup: refuses a short or mismatched password, shows the secret as text and QR, checks the code, signs in", async () => {
    const backend = installMockBackend({ settings: { language: "en" }, auth: { state: "setup", serverUrl: null } });
    const { container } = render(<App />);
    const form = await found(container, "#setup-account");
    expect(q(container, "#auth-screen")?.dataset.authState).toBe("setup");
    // Nothing else answers before sign-in.
    expect(() => backend.handle("console_state")).toThrow(expect.objectContaining({ code: "signed_out" }));

    type(q(form, "#auth-user"), "wang.qiang");
    type(q(form, "#auth-display-name"), "王强");
    type(q(form, "#auth-password"), "short");
    type(q(form, "#auth-password2"), "short");
    fireEvent.click(q(form, "#setup-next")!);
    expect((await screen.findByRole("alert")).textContent).toContain("at least 12 characters");
    type(q(form, "#auth-password"), "a long passphrase 1");
    type(q(form, "#auth-password2"), "a long passphrase 2");
    fireEvent.click(q(form, "#setup-next")!);
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("The two passwords differ"));
    type(q(form, "#auth-password2"), "a long passphrase 1");
    fireEvent.click(q(form, "#setup-next")!);

    // The secret as text (grouped) and as a QR code drawn locally (an SVG data URL).
    const secret = await found(container, "#totp-secret");
    expect(secret.dataset.totpSecret).toBe(MOCK_TOTP_SECRET);
    expect(secret.textContent).toBe(groupSecret(MOCK_TOTP_SECRET));
    const qr = await found<HTMLImageElement>(container, "#totp-qr");
    expect(qr.src.startsWith("data:image/svg+xml")).toBe(true);
    expect(decodeURIComponent(qr.src)).toContain("<svg");
    expect(qr.alt).toBe("QR code of the authenticator secret");

    // A wrong code: the backend's message is shown; the right one signs in.
    type(q(container, "#auth-code"), "111111");
    fireEvent.click(q(container, "#setup-confirm")!);
    await waitFor(() => expect(q(container, "#auth-error [data-error-message]")?.textContent).toBe("wrong code: enter the code the authenticator shows now"));
    type(q(container, "#auth-code"), MOCK_TOTP_CODE);
    fireEvent.click(q(container, "#setup-confirm")!);
    await consoleShown(container);
    // The console's language is remembered for the next sign-in screen.
    expect(window.localStorage.getItem(LANG_KEY)).toBe("en");
    window.localStorage.removeItem(LANG_KEY);
    const bar = q(container, "#auth-bar")!;
    expect(bar.dataset.user).toBe("wang.qiang");
    expect(bar.dataset.role).toBe("commander");
    // A console without a server: its own account, neither online nor offline.
    expect(bar.dataset.signIn).toBe("local");
    expect(bar.textContent).toContain("王强");
    expect(bar.textContent).toContain("Commander");
    expect(bar.querySelector(".auth-mode")?.textContent).toBe("local");
    expect(bar.querySelector(".auth-mode")?.getAttribute("title")).toBe("An account of this console only (no server)");
  });

  it("enroll: server, user, password, code, device name; errors shown; then the console online", async () => {
    installMockBackend({ settings: { language: "en" }, auth: { state: "enroll", serverUrl: "https://10.20.0.5:7400", loginHint: "li.na" } });
    const { container } = render(<App />);
    const form = await found(container, "#enroll-device");
    expect(q<HTMLInputElement>(form, "#enroll-server")?.value).toBe("https://10.20.0.5:7400");
    // `outpost --user li.na` pre-fills the login name.
    expect(q<HTMLInputElement>(form, "#auth-user")?.value).toBe("li.na");
    type(q(form, "#auth-password"), "not it");
    type(q(form, "#auth-code"), MOCK_TOTP_CODE);
    type(q(form, "#enroll-device-name"), "指挥车 3");
    fireEvent.click(q(form, "#enroll-submit")!);
    await waitFor(() => expect(q(container, "#auth-error")?.textContent).toContain('wrong user name, password or code for "li.na"'));
    type(q(form, "#auth-password"), MOCK_PASSWORD);
    fireEvent.click(q(form, "#enroll-submit")!);
    await consoleShown(container);
    expect(q(container, "#auth-bar")?.dataset.signIn).toBe("online");
    expect(q(container, "#auth-bar")?.dataset.role).toBe("dispatcher");
  });

  it("sign in: lists who may sign in offline with their offline-until; a pick fills the user; wrong code refused", async () => {
    const until = "2026-12-02T08:00:00Z";
    installMockBackend({
      settings: { language: "en" },
      auth: {
        state: "signed_out",
        serverReachable: false,
        knownUsers: [
          { user: "li.na", display_name: "调度员 李娜", role: "dispatcher", offline_until: until },
          { user: "viewer", display_name: "查看员 赵敏", role: "viewer", offline_until: "2020-01-01T00:00:00Z" },
        ],
      },
    });
    const { container } = render(<App />);
    const list = await found(container, "#known-users");
    const rows = [...list.querySelectorAll<HTMLElement>("[data-known-user]")];
    expect(rows.map((r) => r.dataset.knownUser)).toEqual(["li.na", "viewer"]);
    expect(rows[0]?.querySelector("[data-offline-until]")?.getAttribute("data-offline-until")).toBe(until);
    expect(rows[0]?.textContent).toContain("Dispatcher");
    expect(rows[0]?.textContent).toContain("offline sign-in until");
    expect(rows[1]?.textContent).toContain("offline sign-in expired");
    // The newest is pre-filled; a pick fills another.
    expect(q<HTMLInputElement>(container, "#auth-user")?.value).toBe("li.na");
    fireEvent.click(rows[1]!.querySelector("button")!);
    expect(q<HTMLInputElement>(container, "#auth-user")?.value).toBe("viewer");
    fireEvent.click(rows[0]!.querySelector("button")!);
    type(q(container, "#auth-password"), MOCK_PASSWORD);
    type(q(container, "#auth-code"), "000000");
    fireEvent.click(q(container, "#sign-in-submit")!);
    await waitFor(() => expect(q(container, "#auth-error [data-error-message]")?.textContent).toBe('wrong user name, password or code for "li.na"'));
    type(q(container, "#auth-code"), MOCK_TOTP_CODE);
    fireEvent.click(q(container, "#sign-in-submit")!);
    await consoleShown(container);
    // The server did not answer: an offline sign-in, shown as such.
    expect(q(container, "#auth-bar")?.dataset.signIn).toBe("offline");
    expect(q(container, "#auth-bar .auth-mode")?.getAttribute("title")).toContain("Offline sign-in");
  });

  it("lock button → lock screen; the same person unlocks with the password; sign out → sign-in screen", async () => {
    installMockBackend({ settings: { language: "en" } });
    const { container } = render(<App />);
    await consoleShown(container);
    fireEvent.click(q(container, "#lock-console")!);
    const form = await found(container, "#unlock");
    // The picture is gone while locked.
    expect(container.querySelectorAll("[data-incident-id]")).toHaveLength(0);
    expect(q(container, "#locked-user")?.dataset.lockedUser).toBe("dispatcher");
    expect(q(form, "#auth-code")).toBeNull();
    type(q(form, "#auth-password"), "wrong");
    fireEvent.click(q(form, "#unlock-submit")!);
    await waitFor(() => expect(q(container, "#auth-error")?.textContent).toContain("wrong password"));
    type(q(form, "#auth-password"), MOCK_PASSWORD);
    fireEvent.click(q(form, "#unlock-submit")!);
    await consoleShown(container);
    fireEvent.click(q(container, "#sign-out")!);
    await waitFor(() => expect(q(container, "#sign-in")).not.toBeNull());
    expect(q(container, "#auth-screen")?.dataset.authState).toBe("signed_out");
  });

  it("a language saved in Settings reaches the auth bar and the lock screen at once", async () => {
    installMockBackend({ settings: { language: "en" } });
    const { container } = render(<App />);
    await consoleShown(container);
    expect(q(container, "#lock-console")?.textContent).toBe("Lock");
    fireEvent.click(q(container, "#open-settings")!);
    const select = await found<HTMLSelectElement>(container, "#settings-language");
    fireEvent.change(select, { target: { value: "zh_cn" } });
    fireEvent.click(q(container, "#settings-save")!);
    await waitFor(() => expect(q(container, "#lock-console")?.textContent).toBe("锁定"));
    fireEvent.click(q(container, "#lock-console")!);
    await found(container, "#unlock");
    expect(q(container, "#unlock-submit")?.textContent).toBe("解锁");
  });

  it("locked past 12 hours: the code is required too; switch user signs someone else in", async () => {
    installMockBackend({ settings: { language: "zh_cn" }, auth: { state: "locked", reauthDue: true } });
    const { container } = render(<App />);
    const form = await found(container, "#unlock");
    expect(q(form, "#auth-code")).not.toBeNull();
    type(q(form, "#auth-password"), MOCK_PASSWORD);
    fireEvent.click(q(form, "#unlock-submit")!);
    await waitFor(() => expect(q(container, "#auth-error")?.textContent).toContain("enter a current code"));
    fireEvent.click(q(container, "#switch-user")!);
    const signIn = await found(container, "#sign-in");
    expect(q<HTMLInputElement>(signIn, "#auth-user")?.value).toBe("");
    type(q(signIn, "#auth-user"), "viewer");
    type(q(signIn, "#auth-password"), MOCK_PASSWORD);
    type(q(signIn, "#auth-code"), MOCK_TOTP_CODE);
    fireEvent.click(q(signIn, "#sign-in-submit")!);
    await consoleShown(container);
    expect(q(container, "#auth-bar")?.dataset.user).toBe("viewer");
  });

  it("signed in offline with the server back: the sync indicator asks for an online sign-in, its button opens the sign-in form for the same person", async () => {
    const backend = installMockBackend({
      settings: { language: "zh_cn" },
      sync: { offlineMs: 0, syncingMs: 0, offlineSinceAgoS: 60 },
      auth: { state: "signed_out", serverReachable: false },
    });
    const { container } = render(<App />);
    const form = await found(container, "#sign-in");
    type(q(form, "#auth-user"), "li.na");
    type(q(form, "#auth-password"), MOCK_PASSWORD);
    type(q(form, "#auth-code"), MOCK_TOTP_CODE);
    fireEvent.click(q(form, "#sign-in-submit")!);
    await consoleShown(container);
    expect(q(container, "#auth-bar")?.dataset.signIn).toBe("offline");
    backend.auth.reachable = true;
    await waitFor(() => expect(q(container, "#sync-indicator")?.dataset.syncState).toBe("sign_in_required"));
    expect(q(container, "#sync-indicator [data-sync-text]")?.textContent).toBe("需要联网登录以同步");
    fireEvent.click(q(container, "#sync-sign-in")!);
    const again = await found(container, "#sign-in");
    expect(q(container, "#auth-screen")?.dataset.authState).toBe("locked");
    expect(q<HTMLInputElement>(again, "#auth-user")?.value).toBe("li.na");
    type(q(again, "#auth-password"), MOCK_PASSWORD);
    type(q(again, "#auth-code"), MOCK_TOTP_CODE);
    fireEvent.click(q(again, "#sign-in-submit")!);
    await consoleShown(container);
    expect(q(container, "#auth-bar")?.dataset.signIn).toBe("online");
    await waitFor(() => expect(q(container, "#sync-indicator")?.dataset.syncState).toBe("online"));
    expect(q(container, "#sync-sign-in")).toBeNull();
    // An ordinary lock still shows the unlock form.
    fireEvent.click(q(container, "#lock-console")!);
    await found(container, "#unlock");
  });

  it("administrators and auditors are refused the console, said in the screen's language", async () => {
    installMockBackend({ settings: { language: "zh_cn" }, auth: { state: "signed_out" } });
    window.localStorage.setItem(LANG_KEY, "zh");
    const { container } = render(<App />);
    for (const user of ["admin", "auditor"]) {
      const form = await found(container, "#sign-in");
      type(q(form, "#auth-user"), user);
      type(q(form, "#auth-password"), MOCK_PASSWORD);
      type(q(form, "#auth-code"), MOCK_TOTP_CODE);
      fireEvent.click(q(form, "#sign-in-submit")!);
      await waitFor(() =>
        expect(q(container, "#auth-error [data-error-message]")?.textContent).toBe(
          "管理员和审计员不在指挥台登录，请使用服务器工具：`outpost-server user …`、`outpost-server audit …`",
        ),
      );
      expect(q(container, "#auth-screen")?.dataset.authState).toBe("signed_out");
    }
    window.localStorage.removeItem(LANG_KEY);
  });

  it("revoked: the message, and no form (in the last console's language)", async () => {
    window.localStorage.setItem(LANG_KEY, "zh");
    installMockBackend({ settings: { language: "zh_cn" }, auth: { state: "revoked", message: "device dev-7 revoked: laptop stolen" } });
    const { container } = render(<App />);
    const box = await found(container, "#auth-revoked");
    expect(box.textContent).toContain("本设备已被吊销");
    expect(box.querySelector("[data-auth-message]")?.textContent).toBe("device dev-7 revoked: laptop stolen");
    expect(container.querySelector("form")).toBeNull();
    window.localStorage.removeItem(LANG_KEY);
  });

  it("shows the sign-in screens in Chinese when the system language is Chinese", async () => {
    const spy = vi.spyOn(navigator, "language", "get").mockReturnValue("zh-CN");
    installMockBackend({ auth: { state: "setup", serverUrl: null } });
    const { container } = render(<App />);
    await waitFor(() => expect(q(container, "#setup-account h2")?.textContent).toBe("创建第一个账户"));
    expect(q(container, "label[for='auth-password2']")?.textContent).toContain("再次输入密码");
    spy.mockRestore();
  });
});

describe("idle lock", () => {
  it("fires once after the idle time without input; input restarts the wait; never when null", () => {
    vi.useFakeTimers();
    const onIdle = vi.fn();
    const { unmount } = renderHook(() => useIdleLock(60, onIdle));
    vi.advanceTimersByTime(59_000);
    fireEvent.mouseMove(window);
    vi.advanceTimersByTime(59_000);
    fireEvent.keyDown(window, { key: "a" });
    vi.advanceTimersByTime(59_000);
    fireEvent.touchStart(window);
    vi.advanceTimersByTime(59_000);
    expect(onIdle).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1_000);
    expect(onIdle).toHaveBeenCalledTimes(1);
    // Input after it fired does not lock again.
    fireEvent.mouseMove(window);
    vi.advanceTimersByTime(120_000);
    expect(onIdle).toHaveBeenCalledTimes(1);
    unmount();

    const never = vi.fn();
    renderHook(() => useIdleLock(null, never));
    vi.advanceTimersByTime(24 * 3600_000);
    expect(never).not.toHaveBeenCalled();
  });

  it("locks the console after idle_lock_s without input (fake timers), not in field mode", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const backend = installMockBackend({ settings: { language: "en" }, auth: { idleLockS: 300 } });
    const { container } = render(<App />);
    await consoleShown(container);
    await act(async () => {
      vi.advanceTimersByTime(299_000);
    });
    expect(backend.auth.state).toBe("signed_in");
    fireEvent.mouseDown(window);
    await act(async () => {
      vi.advanceTimersByTime(299_000);
    });
    expect(backend.auth.state).toBe("signed_in");
    await act(async () => {
      vi.advanceTimersByTime(2_000);
    });
    await waitFor(() => expect(q(container, "#unlock")).not.toBeNull());
    expect(backend.auth.state).toBe("locked");
  });

  it("a field laptop (idle_lock_s null) never locks when idle", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const backend = installMockBackend({ settings: { language: "en" }, fieldUnit: "u-02", gpsTickMs: 0, auth: { user: "patrol02", idleLockS: null } });
    const { container } = render(<App />);
    await waitFor(() => expect(q(container, "#field-assignment")).not.toBeNull());
    await act(async () => {
      vi.advanceTimersByTime(3 * 3600_000);
    });
    expect(backend.auth.state).toBe("signed_in");
    expect(q(container, "#unlock")).toBeNull();
  });
});

describe("role-aware console", () => {
  it("permissions follow access::check_op", () => {
    const p = (role: string, unit_id: string | null = null) => permissionsOf({ role, unit_id });
    expect(p("commander").devices).toBe(true);
    expect(p("dispatcher").incidents).toBe(true);
    expect(p("dispatcher").devices).toBe(false);
    expect(p("dispatcher").facilities).toBe(false);
    for (const r of ["viewer", "administrator", "auditor", "no_such_role"]) {
      const x = p(r);
      expect([x.incidents, x.closures, x.conflicts, x.devices, x.facilities, x.unitStatus("u-01"), x.note(["u-01"])], r).toEqual([
        false,
        false,
        false,
        false,
        false,
        false,
        false,
      ]);
      expect(x.readOnly).toBe(true);
    }
    const f = p("field_unit", "u-02");
    expect([f.incidents, f.unitStatus("u-02"), f.unitStatus("u-01"), f.note(["u-01", "u-02"]), f.note(["u-01"]), f.readOnly]).toEqual([
      false,
      true,
      false,
      true,
      false,
      false,
    ]);
    expect(p("field_unit", null).readOnly).toBe(true);
    expect(permissionsOf(null).readOnly).toBe(true);
  });

  it("a viewer sees the picture but no write action, and is marked read only", async () => {
    installMockBackend({ settings: { language: "en" }, auth: { user: "viewer" } });
    const { container } = render(<App />);
    await consoleShown(container);
    expect(q(container, "#new-incident")).toBeNull();
    expect(q(container, "#auth-bar")?.textContent).toContain("read only");
    // N does nothing.
    fireEvent.keyDown(window, { key: "n" });
    expect(q(container, "#incident-address")).toBeNull();
    // The fire's card: no acknowledge, assign, note, close or status buttons; selects disabled.
    fireEvent.click(container.querySelectorAll<HTMLElement>("[data-incident-id]")[0]!);
    const detail = await found(container, "#incident-detail");
    for (const sel of ["#incident-acknowledge", "#assign-unit", "#incident-note", "#incident-close", "[data-status-to]", "[data-release]", "#closest-units"]) {
      expect(detail.querySelector(sel), sel).toBeNull();
    }
    expect([...detail.querySelectorAll<HTMLSelectElement>("select")].every((s) => s.disabled)).toBe(true);
    // A unit card without status buttons.
    fireEvent.keyDown(window, { key: "Escape" });
    fireEvent.click(q(container, "[data-unit-id='u-02'] .callsign")!);
    const card = await found(container, "#unit-card");
    expect(card.querySelector("[data-status-to]")).toBeNull();
    // Closures: the list, but nothing to draw.
    fireEvent.click(q(container, "#open-closures")!);
    await waitFor(() => expect(q(container, "#closures-title")).not.toBeNull());
    expect(q(container, "#closure-draw-line")).toBeNull();
  });

  it("a dispatcher writes incidents but may not bind devices or import facilities", async () => {
    installMockBackend({ settings: { language: "en" }, auth: { user: "li.na" } });
    const { container } = render(<App />);
    await consoleShown(container);
    expect(q(container, "#new-incident")).not.toBeNull();
    fireEvent.click(q(container, "#open-devices")!);
    const row = await found(container, "#devices-panel [data-device-id='S-LAPTOP-07']");
    expect(row.querySelector<HTMLButtonElement>("[data-bind]")?.disabled).toBe(true);
    fireEvent.click(q(container, "#open-settings")!);
    await waitFor(() => expect(q<HTMLButtonElement>(container, "#open-import")?.disabled).toBe(true));
  });

  it("a field unit in the command layout changes only its own unit and gets the backend's refusal otherwise", async () => {
    const backend = installMockBackend({ settings: { language: "en" }, auth: { user: "patrol02" } });
    const { container } = render(<App />);
    await consoleShown(container);
    expect(q(container, "#new-incident")).toBeNull();
    fireEvent.click(q(container, "[data-unit-id='u-01'] .callsign")!);
    await waitFor(() => expect(q(container, "#unit-card")).not.toBeNull());
    expect(q(container, "#unit-card [data-status-to]")).toBeNull();
    fireEvent.keyDown(window, { key: "Escape" });
    fireEvent.click(q(container, "[data-unit-id='u-02'] .callsign")!);
    await waitFor(() => expect(q(container, "#unit-card [data-status-to='busy']")).not.toBeNull());
    // The backend enforces anyway: a write on another unit is refused with its message.
    expect(() => backend.handle("set_unit_status", { args: { unit_id: "u-01", to: "busy" } })).toThrow();
    try {
      backend.handle("set_unit_status", { args: { unit_id: "u-01", to: "busy" } });
    } catch (e) {
      expect((e as { code: string }).code).toBe("forbidden");
    }
  });

  it("unlockNeedsCode: only once the 12-hour sign-in is over", () => {
    const s = (reauth_at: string) => ({ user: { reauth_at } }) as unknown as AuthStatus;
    const now = Date.parse("2026-11-30T12:00:00Z");
    expect(unlockNeedsCode(s("2026-11-30T12:00:01Z"), now)).toBe(false);
    expect(unlockNeedsCode(s("2026-11-30T12:00:00Z"), now)).toBe(true);
  });
});
