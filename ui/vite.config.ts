/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import type { Plugin } from "vite";

// In `npm run dev` without Tauri the fake backend points the map at /mock-pack; answer its
// tile requests with 204 (an empty tile, as the shell does beyond the pack) instead of 404s.
const emptyMockTiles: Plugin = {
  name: "outpost-empty-mock-tiles",
  configureServer(server) {
    server.middlewares.use("/mock-pack/", (_req, res) => {
      res.statusCode = 204;
      res.end();
    });
  },
};

// Relative base: the same dist is served by Tauri (tauri://localhost, http://tauri.localhost)
// and by the e2e test's static server.
export default defineConfig({
  base: "./",
  plugins: [react(), emptyMockTiles],
  clearScreen: false,
  server: {
    port: 5173,
    strictPort: true,
  },
  build: {
    outDir: "dist",
    target: "es2022",
    // maplibre-gl alone is ~1 MB; one chunk is fine for a desktop app loaded from disk.
    chunkSizeWarningLimit: 2000,
  },
  test: {
    include: ["src/**/*.test.{ts,tsx}"],
    environment: "node",
  },
});
