// Shared by the end-to-end test (run.mjs) and bench/desktop.mjs: tauri-driver on free ports,
// WebDriver sessions that launch the real app, the cached demo pack, waiting for the map.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { remote } from "webdriverio";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, "../..");
export const OUT = path.join(HERE, "out");
export const BIN = path.resolve(ROOT, process.env.OUTPOST_BIN ?? "target/debug/outpost");
export const ROSTER = path.join(ROOT, "demo/andorra-roster.json");
export const DEMO_PACK = "andorra-demo.outpost";
export const WAIT_MS = Number(process.env.E2E_TIMEOUT_S ?? 180) * 1000;

const t0 = Date.now();
export const log = (...a) => console.error(`[e2e ${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);

export function fail(message) {
  throw new Error(message);
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  fail(`tauri-driver did not listen on port ${port} within ${ms} ms`);
}

/**
 * The demo pack, built once per binary by `outpost --demo --prepare-demo` into a cache under
 * target/ and copied into each test's data directory (building it inside a WebDriver session
 * would outlast the session timeout).
 */
export function demoPack() {
  const cacheDir = path.join(ROOT, "target/e2e-cache");
  const cached = path.join(cacheDir, DEMO_PACK);
  if (existsSync(cached) && statSync(cached).mtimeMs > statSync(BIN).mtimeMs) return cached;
  rmSync(cached, { force: true });
  mkdirSync(cacheDir, { recursive: true });
  log(`building the demo pack into ${path.relative(ROOT, cacheDir)} (once per build of the app)`);
  const r = spawnSync(BIN, ["--demo", "--data-dir", cacheDir, "--prepare-demo"], { cwd: ROOT, stdio: "inherit" });
  if (r.status !== 0) fail(`${BIN} --prepare-demo failed (exit ${r.status})`);
  if (!existsSync(cached)) fail(`--prepare-demo left no ${cached}`);
  return cached;
}

export class Driver {
  async start() {
    this.port = await freePort();
    this.nativePort = await freePort();
    this.proc = spawn("tauri-driver", ["--port", String(this.port), "--native-port", String(this.nativePort)], {
      stdio: ["ignore", "inherit", "inherit"],
    });
    this.exited = new Promise((resolve) => this.proc.once("exit", resolve));
    this.proc.once("error", (e) => log(`tauri-driver failed to start: ${e.message} (cargo install tauri-driver --locked --version ^2)`));
    await waitForPort(this.port, 20_000);
  }

  /** SIGTERM, never SIGKILL: tauri-driver then stops WebKitWebDriver too (TAURI.md). */
  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Launches the app (or another Tauri binary, absolute path) and returns the WebDriver session. */
  session(args, application = BIN) {
    return remote({
      hostname: "127.0.0.1",
      port: this.port,
      logLevel: "warn",
      connectionRetryTimeout: 120_000,
      connectionRetryCount: 0,
      // No browserName: WebKitWebDriver refuses "wry" (TAURI.md).
      capabilities: { "tauri:options": { application, args } },
    });
  }
}

export async function waitReady(browser) {
  await browser.waitUntil(
    () => browser.execute(() => Boolean(window.__outpost && window.__outpost.ready)),
    {
      timeout: WAIT_MS,
      interval: 250,
      timeoutMsg: `window.__outpost.ready was not true within ${WAIT_MS / 1000} s`,
    },
  );
}

