// @vitest-environment jsdom
// Password change (issue 6) against the fake backend through the real IPC path: from the auth
// bar ("Change password"), and forced after a sign-in whose password an administrator set
// (state `password_change`: the console stays closed until it is changed).
import { cleanup, fireEvent, render, waitFor } from "@testing-library/react";
import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { MOCK_PASSWORD, MOCK_TOTP_CODE } from "./mock/auth";
import { installMockBackend } from "./mock/install";

vi.mock("./map/MapView", () => ({ MapView: () => <div data-testid="map" /> }));

afterEach(() => {
  cleanup();
  clearMocks();
  window.localStorage.clear();
});

const NEW_PASSWORD = "a brand new passphrase";
const type = (el: Element | null, value: string) => fireEvent.change(el!, { target: { value } });
const q = <T extends Element = HTMLElement>(c: HTMLElement, sel: string) => c.querySelector<T>(sel);
const found = <T extends Element = HTMLElement>(c: HTMLElement, sel: string) =>
  waitFor(() => {
    const el = c.querySelector<T>(sel);
    if (!el) throw new Error(`${sel} is not shown`);
    return el;
  });
const consoleShown = (c: HTMLElement) => waitFor(() => expect(c.querySelectorAll("[data-incident-id]")).toHaveLength(3));
const errorShown = (c: HTMLElement, text: string) => waitFor(() => expect(q(c, "#auth-error [data-error-message]")?.textContent).toContain(text));

function fill(form: HTMLElement, old: string, next: string, again: string, code: string) {
  type(q(form, "#change-old"), old);
  type(q(form, "#change-new"), next);
  type(q(form, "#change-again"), again);
  type(q(form, "#change-code"), code);
  fireEvent.click(q(form, "#change-password-submit")!);
}

describe("change password", () => {
  it("from the auth bar: checks the new password twice, shows the backend's refusal, then the new password unlocks", async () => {
    installMockBackend({ settings: { language: "en" } });
    const { container } = render(<App />);
    await consoleShown(container);
    expect(q(container, "#change-password")?.textContent).toBe("Change password");
    fireEvent.click(q(container, "#change-password")!);
    const form = await found(container, "#change-password-form");
    expect(form.dataset.forced).toBe("false");
    expect(q(form, "#change-password-required")).toBeNull();

    fill(form, MOCK_PASSWORD, "short", "short", MOCK_TOTP_CODE);
    await errorShown(container, "at least 12 characters");
    fill(form, MOCK_PASSWORD, NEW_PASSWORD, `${NEW_PASSWORD}!`, MOCK_TOTP_CODE);
    await errorShown(container, "The two passwords differ");
    fill(form, MOCK_PASSWORD, MOCK_PASSWORD, MOCK_PASSWORD, MOCK_TOTP_CODE);
    await errorShown(container, "the same as the current one");
    fill(form, "not the password", NEW_PASSWORD, NEW_PASSWORD, MOCK_TOTP_CODE);
    await errorShown(container, "wrong current password or code");
    fill(form, MOCK_PASSWORD, NEW_PASSWORD, NEW_PASSWORD, MOCK_TOTP_CODE);
    await waitFor(() => expect(q(container, "#change-password-form")).toBeNull());
    await consoleShown(container);

    // Cancel closes the form without a change.
    fireEvent.click(q(container, "#change-password")!);
    fireEvent.click((await found(container, "#change-password-cancel")) as HTMLElement);
    await waitFor(() => expect(q(container, "#change-password-form")).toBeNull());

    // Locked: the old password no longer unlocks, the new one does.
    fireEvent.click(q(container, "#lock-console")!);
    const unlock = await found(container, "#unlock");
    type(q(unlock, "#auth-password"), MOCK_PASSWORD);
    fireEvent.click(q(unlock, "#unlock-submit")!);
    await waitFor(() => expect(q(container, "#auth-error")?.textContent).toContain("wrong password"));
    type(q(unlock, "#auth-password"), NEW_PASSWORD);
    fireEvent.click(q(unlock, "#unlock-submit")!);
    await consoleShown(container);
  });

  it("forced after an administrator's password (in Chinese): the console stays closed until it is changed", async () => {
    const spy = vi.spyOn(navigator, "language", "get").mockReturnValue("zh-CN");
    const backend = installMockBackend({ auth: { state: "signed_out", mustChangePassword: true } });
    const { container } = render(<App />);
    const signIn = await found(container, "#sign-in");
    type(q(signIn, "#auth-user"), "dispatcher");
    type(q(signIn, "#auth-password"), MOCK_PASSWORD);
    type(q(signIn, "#auth-code"), MOCK_TOTP_CODE);
    fireEvent.click(q(signIn, "#sign-in-submit")!);

    const form = await found(container, "#change-password-form");
    expect(q(container, "#auth-screen")?.dataset.authState).toBe("password_change");
    expect(form.dataset.forced).toBe("true");
    expect(q(form, "h2")?.textContent).toBe("修改密码");
    expect(q(form, "#change-password-required")?.textContent).toContain("由管理员设置");
    expect(q(container, "label[for='change-again']")?.textContent).toContain("再次输入新密码");
    expect(container.querySelectorAll("[data-incident-id]")).toHaveLength(0);
    expect(q(container, "#change-password-cancel")).toBeNull();

    fill(form, MOCK_PASSWORD, NEW_PASSWORD, NEW_PASSWORD, MOCK_TOTP_CODE);
    await consoleShown(container);
    expect(backend.auth.mustChangePassword).toBe(false);
    expect(q(container, "#auth-bar")?.dataset.user).toBe("dispatcher");
    spy.mockRestore();
  });

  it("forced: signing out is the other way out", async () => {
    installMockBackend({ settings: { language: "en" }, auth: { state: "password_change" } });
    const { container } = render(<App />);
    const form = await found(container, "#change-password-form");
    fireEvent.click(q(form, "#change-password-sign-out")!);
    await found(container, "#sign-in");
    expect(q(container, "#auth-screen")?.dataset.authState).toBe("signed_out");
  });
});
