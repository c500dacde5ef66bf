// What the backend sends when a command fails: `ErrorPayload { code, message }` (ipc.rs).

import type { ErrorPayload } from "./bindings";

/** True when `e` has the IPC error shape. */
export function isErrorPayload(e: unknown): e is ErrorPayload {
  return typeof e === "object" && e !== null && "code" in e && "message" in e && typeof (e as ErrorPayload).message === "string";
}

/** One line for the user: the backend's message, or whatever was thrown. */
export function errorText(e: unknown): string {
  if (isErrorPayload(e)) return e.message;
  if (e instanceof Error) return e.message;
  if (typeof e === "string") return e;
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}
