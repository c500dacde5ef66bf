// Builds the map benchmark page (map-bench.html, bench/mapBench.tsx) into e2e/.bench for
// bench/map.sh: the console's real MapView and unit layer fed synthetic units. Not shipped.
import { defineConfig, mergeConfig } from "vite";
import base from "./vite.config";

export default mergeConfig(
  base,
  defineConfig({
    logLevel: "warn",
    build: {
      outDir: "e2e/.bench",
      emptyOutDir: true,
      rollupOptions: { input: "map-bench.html" },
    },
  }),
);
