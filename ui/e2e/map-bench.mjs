// Driver of the map benchmark (bench/map.sh): serves the bench page (e2e/.bench, built by
// `vite build --config vite.bench.config.ts`) on 127.0.0.1 and runs it once per engine, unit
// count and mode, printing one JSON line per run on stdout (progress on stderr).
//
//   node e2e/map-bench.mjs --engines chromium,webkit --n 1000,5000,10000 --modes ours,naive,clustered \
//        [--warm 5] [--secs 20] [--tick 100] [--cluster-zoom 11] [--static-n 10] [--before-n 10000] [--timeout-s 240]
//
// Modes: ours (the console at zoom 14, a district view: every unit drawn), naive (the setData
// baseline, same view, same layers and zoom ranges: only the data path differs), clustered (the
// console at --cluster-zoom over a box that fills it), before (Chromium, --before-n units: naive
// plus every label and heading arrow at every zoom, the console before issue 7).
// MAP_BENCH_EXTRA="&hide=units-label" appends page parameters (diagnostics, not in bench/map.sh).
//
// chromium: Debian's /usr/bin/chromium, headless, through playwright-core (software GL, as the
// e2e test runs it); the result is read from window.__mapBench.
// webkit: WebKitGTK's MiniBrowser (the library of the desktop app's webview, with accelerated
// compositing on, as the app keeps it; MAP_BENCH_WEBKIT_COMPOSITING=off turns it off), full
// screen on the X display in $DISPLAY (bench/map.sh starts Xvfb at 1600x1000); the page POSTs
// its result.
import { spawn } from "node:child_process";
import { createReadStream, existsSync, mkdtempSync, rmSync } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import os from "node:os";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(join(here, ".bench"));
const CHROMIUM =
  process.env.CHROMIUM ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p)) ?? "/usr/bin/chromium";
const MINIBROWSER =
  process.env.MINIBROWSER ??
  ["/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser", "/usr/lib/aarch64-linux-gnu/webkit2gtk-4.1/MiniBrowser", "/usr/libexec/webkit2gtk-4.1/MiniBrowser"].find((p) =>
    existsSync(p),
  );

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : dflt;
}
const ENGINES = arg("engines", "chromium").split(",");
const COUNTS = arg("n", "1000").split(",").map(Number);
const MODES = arg("modes", "ours,naive").split(",");
const WARM = Number(arg("warm", "5"));
const SECS = Number(arg("secs", "20"));
const TICK = Number(arg("tick", "100"));
// Also per engine: STATIC_N units with no reports and the map redrawn every frame (what one
// redraw costs, whatever the units do); 0 = none.
const STATIC_N = Number(arg("static-n", "0"));
// Chromium only, one run with this many units of the console before issue 7 ("before": naive
// setData plus every label and heading arrow at every zoom), for context; 0 = none.
const BEFORE_N = Number(arg("before-n", "0"));
// The zoom of the "clustered" mode: an overview of the whole area, where the console clusters.
const CLUSTER_ZOOM = Number(arg("cluster-zoom", "11"));
const TIMEOUT_MS = Number(arg("timeout-s", String(WARM + SECS + 150))) * 1000;

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".json": "application/json", ".png": "image/png", ".pbf": "application/x-protobuf" };

/** Results POSTed by pages, by token. */
const posted = new Map();
const waiters = new Map();

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method === "POST" && url.pathname.startsWith("/report/")) {
      const token = url.pathname.slice("/report/".length);
      let body = "";
      for await (const chunk of req) body += chunk;
      posted.set(token, JSON.parse(body));
      waiters.get(token)?.();
      res.writeHead(204).end();
      return;
    }
    // No area pack: every basemap tile is empty (204), as the shell answers beyond a pack.
    if (url.pathname.startsWith("/no-pack/")) {
      res.writeHead(204).end();
      return;
    }
    const file = normalize(join(ROOT, decodeURIComponent(url.pathname)));
    if (!file.startsWith(ROOT + sep)) {
      res.writeHead(403).end();
      return;
    }
    const st = await stat(file).catch(() => null);
    if (!st?.isFile()) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "content-length": st.size });
    createReadStream(file).pipe(res);
  } catch (e) {
    res.writeHead(500).end(String(e));
  }
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const origin = `http://127.0.0.1:${server.address().port}`;

/** Page parameters of a driver mode: ours, naive, static (ours, no reports, a redraw every
 * frame), before (naive with every label and arrow at every zoom) or clustered (ours at zoom
 * CLUSTER_ZOOM over a box that fills that view). */
const MODE_PARAMS = { ours: "mode=ours", naive: "mode=naive", static: "mode=ours&static=1", before: "mode=naive&details=all" };
const modeParams = (mode) => (mode === "clustered" ? `mode=ours&zoom=${CLUSTER_ZOOM}` : MODE_PARAMS[mode] ?? `mode=${mode}`);
const pageUrl = (n, mode, token) =>
  `${origin}/map-bench.html?n=${n}&${modeParams(mode)}&warm=${WARM}&secs=${SECS}&tick=${TICK}${process.env.MAP_BENCH_EXTRA ?? ""}` +
  (token ? `&report=${encodeURIComponent(`${origin}/report/${token}`)}` : "");

let browser = null;
async function runChromium(n, mode) {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-unsafe-swiftshader"],
  });
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  try {
    await page.goto(pageUrl(n, mode));
    await page.waitForFunction(() => window.__mapBench?.done === true, null, { timeout: TIMEOUT_MS, polling: 1000 });
    const result = await page.evaluate(() => window.__mapBench.result);
    result.errors.push(...pageErrors);
    return result;
  } finally {
    await context.close();
  }
}

/**
 * Whether the WebKit runs use accelerated compositing: on, as the desktop app keeps it (WebKit's
 * default, with or without a GPU; src-tauri/src/webview.rs). MAP_BENCH_WEBKIT_COMPOSITING=off
 * measures WebKit without it (WEBKIT_DISABLE_COMPOSITING_MODE=1), e.g. to compare.
 */
function webkitCompositing() {
  return process.env.MAP_BENCH_WEBKIT_COMPOSITING !== "off";
}

async function runWebkit(n, mode) {
  if (!MINIBROWSER) throw new Error("WebKitGTK's MiniBrowser not found (set MINIBROWSER=/path)");
  if (!process.env.DISPLAY) throw new Error("webkit needs an X display (bench/map.sh starts Xvfb)");
  const token = `${n}-${mode}-${Date.now()}`;
  // Its profile and caches in a temp dir, removed after the run.
  const home = mkdtempSync(join(os.tmpdir(), "outpost-map-bench-webkit-"));
  // Accelerated compositing as the desktop app has it (on); MAP_BENCH_WEBKIT_COMPOSITING=off
  // turns it off through the variable WebKitGTK reads (MiniBrowser has no option for it).
  const gpu = webkitCompositing();
  const env = { ...process.env, ...(gpu ? {} : { WEBKIT_DISABLE_COMPOSITING_MODE: "1" }), NO_AT_BRIDGE: "1", HOME: home, XDG_DATA_HOME: join(home, "data"), XDG_CACHE_HOME: join(home, "cache"), XDG_CONFIG_HOME: join(home, "config") };
  const child = spawn(MINIBROWSER, ["--full-screen", "--private", "--enable-webgl=true", pageUrl(n, mode, token)], { env, stdio: ["ignore", "ignore", "pipe"], detached: true });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise((ok) => child.on("exit", (code) => ok(code)));
  try {
    const got = new Promise((ok) => waiters.set(token, ok));
    const timeout = new Promise((ok) => setTimeout(() => ok("timeout"), TIMEOUT_MS));
    const how = await Promise.race([got.then(() => "done"), exited.then((c) => `exited ${c}`), timeout]);
    if (how !== "done") throw new Error(`MiniBrowser: no result (${how}); stderr: ${stderr.trim().slice(-800)}`);
    return posted.get(token);
  } finally {
    waiters.delete(token);
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      // already gone
    }
    await Promise.race([exited, new Promise((ok) => setTimeout(ok, 3000))]);
    rmSync(home, { recursive: true, force: true });
  }
}

let failed = false;
try {
  for (const engine of ENGINES) {
    const runs = COUNTS.flatMap((n) => MODES.map((mode) => [n, mode]));
    if (STATIC_N > 0) runs.push([STATIC_N, "static"]);
    if (BEFORE_N > 0 && engine === "chromium") runs.push([BEFORE_N, "before"]);
    for (const [n, mode] of runs) {
      {
        process.stderr.write(`map bench: ${engine} n=${n} ${mode} (warm ${WARM} s, ${SECS} s measured)\n`);
        let result;
        try {
          result = engine === "webkit" ? await runWebkit(n, mode) : await runChromium(n, mode);
        } catch (e) {
          result = { n, mode, frames: 0, errors: [String(e?.message ?? e)] };
          failed = true;
        }
        result.engine = engine;
        result.mode = mode;
        if (engine === "webkit") result.compositing = webkitCompositing();
        process.stdout.write(`${JSON.stringify(result)}\n`);
      }
    }
  }
} finally {
  await browser?.close();
  server.close();
}
process.exit(failed ? 1 : 0);
