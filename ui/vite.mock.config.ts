// Bundles the in-memory fake backend (src/mock) as one classic script for the Playwright test,
// which injects it with page.addInitScript before the app's own code runs.
import { defineConfig } from "vite";

export default defineConfig({
  logLevel: "warn",
  publicDir: false,
  build: {
    outDir: "e2e/.build",
    emptyOutDir: true,
    minify: false,
    lib: {
      entry: "src/mock/e2e-entry.ts",
      formats: ["iife"],
      name: "OutpostMock",
      fileName: () => "mock-backend.js",
    },
  },
});
