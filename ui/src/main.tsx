import * as maplibregl from "maplibre-gl";
import workerUrl from "maplibre-gl/dist/maplibre-gl-worker.mjs?url";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import type { AuthState } from "./bindings";
import "./styles.css";

// Vite does not emit MapLibre's worker by itself; without this GeoJSON and vector layers
// silently never render (TAURI.md).
maplibregl.setWorkerUrl(workerUrl);
// Start MapLibre's workers (a JS VM each, loading the 0.5 MB worker script) now, while the
// sign-in screen waits for the person, rather than when the map is created after it: the map
// is drawn sooner once they have signed in (bench/desktop.sh, phase B).
maplibregl.prewarm();

async function boot() {
  // `npm run dev` in a plain browser has no Tauri runtime: answer IPC from the in-memory fake.
  // Production builds never include it (the branch is removed when DEV is false).
  if (import.meta.env.DEV && !("__TAURI_INTERNALS__" in window)) {
    const { installMockBackend } = await import("./mock/install");
    // `?unit=u-02` opens the field laptop layout as that unit (like `outpost --unit 巡02`).
    const params = new URLSearchParams(window.location.search);
    const unit = params.get("unit");
    // `?auth=setup` (or enroll, signed_out, locked, revoked) starts at that sign-in screen;
    // `?user=viewer` signs in as another of the fake's accounts (src/mock/auth.ts).
    const auth = params.get("auth") as AuthState | null;
    installMockBackend({
      demo: true,
      fieldUnit: unit ?? undefined,
      auth: { state: auth ?? undefined, user: params.get("user") ?? undefined, serverUrl: auth === "setup" ? null : undefined },
    });
  }
  const root = document.getElementById("root");
  if (!root) throw new Error("index.html has no #root");
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}

void boot();
