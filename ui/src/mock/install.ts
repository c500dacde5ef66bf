// Installs the in-memory backend behind `@tauri-apps/api`'s IPC (mockIPC), with events.
// Used by the dev server without Tauri and bundled (vite.mock.config.ts) for the Playwright test.

import { emit } from "@tauri-apps/api/event";
import { mockIPC } from "@tauri-apps/api/mocks";
import { STATE_CHANGED_EVENT } from "../bindings";
import { MockBackend, type MockOptions } from "./backend";

declare global {
  interface Window {
    __outpostMock?: MockBackend;
  }
}

/** Creates the fake backend, routes every `invoke` to it and emits `state-changed` after changes. */
export function installMockBackend(opts: MockOptions = {}): MockBackend {
  const backend = new MockBackend(opts);
  mockIPC((cmd, payload) => backend.handle(cmd, payload), { shouldMockEvents: true });
  backend.onChange((revision) => {
    // After the command's promise settles, like the real shell's event.
    setTimeout(() => void emit(STATE_CHANGED_EVENT, { revision }), 0);
  });
  // Field mode: the scripted receiver writes a fix every `gpsTickMs` (default 1 s).
  const tick = opts.gpsTickMs ?? 1000;
  if (opts.fieldUnit && tick > 0) setInterval(() => backend.gpsTick(), tick);
  window.__outpostMock = backend;
  return backend;
}
