// Entry of the IIFE bundle the Playwright test injects with addInitScript before the app runs.
// `window.__OUTPOST_MOCK_OPTIONS__` (set by the test first) chooses the scenario.

import type { MockOptions } from "./backend";
import { installMockBackend } from "./install";

const opts = (window as unknown as { __OUTPOST_MOCK_OPTIONS__?: MockOptions }).__OUTPOST_MOCK_OPTIONS__ ?? {};
installMockBackend(opts);
