// Desktop benchmark, run by bench/desktop.sh under Xvfb and a session bus: cold start to an
// interactive map (through the sign-in screen), and idle memory of the console against a blank
// Tauri window, both driven by tauri-driver + WebKitWebDriver as the end-to-end test does.
//
// Cold start (RUNS launches): each launch is a new app process on its own copy of a data
// directory that already holds an account (made once by a first-run setup, as on any day after
// the first), with the demo pack. Two phases, timed from node:
//   A. launch → sign-in screen interactive: from just before the WebDriver session is asked for
//      (WebKitWebDriver launches the app) to the first poll (every 20 ms) that sees the sign-in
//      form with its submit button enabled;
//   B. sign-in submitted → map interactive: from just before the click on "sign in" (user,
//      password and TOTP code already typed) to the first poll that sees window.__outpost.ready
//      (style loaded, every unit with a fix in view drawn). It includes the password check
//      (argon2id), opening the encrypted database, the console's first state and the map.
// The typing between A and B is the person's time and is not counted.
//
// Idle memory (MEM_RUNS rounds, one process tree at a time so that no two share pages, which
// would lower both PSS figures): the blank window (bench/blank-window: an empty page in a Tauri
// window of the same size) is launched and waited for (document complete); then the console on
// a copy of the same data directory with the demo pack open and no replay (`--pack`), signed in
// and waited for (map ready). Each idles IDLE_S seconds, then the PSS of its process and all its
// descendants (WebKitWebProcess, WebKitNetworkProcess, …) is summed from /proc/PID/smaps_rollup.
//
// Environment: OUTPOST_BIN and BLANK_BIN (binaries, absolute), RUNS, MEM_RUNS, IDLE_S,
// RESULT_JSON (where to write the figures; bench/desktop.sh reads it). Progress goes to stderr.

import { copyFileSync, cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createHmac } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { BIN, DEMO_PACK, Driver, demoPack } from "../tests/e2e/driver.mjs";

const RUNS = Number(process.env.RUNS ?? 5);
const MEM_RUNS = Number(process.env.MEM_RUNS ?? 2);
const IDLE_S = Number(process.env.IDLE_S ?? 30);
const BLANK = process.env.BLANK_BIN;
const RESULT_JSON = process.env.RESULT_JSON;
const USER = "bench";
const PASSWORD = "bench pass phrase 2026";
const TIMEOUT_MS = 120_000;

const t0 = Date.now();
const log = (...a) => console.error(`[desktop ${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** RFC 6238 code (HMAC-SHA1, 6 digits, 30 s) of a base32 secret now (as tests/e2e/run.mjs). */
function totp(secret) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const key = [];
  for (const ch of secret.replace(/[\s=]/g, "").toUpperCase()) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`not base32: ${JSON.stringify(ch)} in the TOTP secret`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      key.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30)));
  const mac = createHmac("sha1", Buffer.from(key)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

/** Polls `probe` in the page every 20 ms until it returns true; the ms since `started`. */
async function until(browser, probe, started, what) {
  for (;;) {
    if (await browser.execute(probe)) return Date.now() - started;
    if (Date.now() - started > TIMEOUT_MS) throw new Error(`${what} not seen within ${TIMEOUT_MS / 1000} s`);
    await sleep(20);
  }
}

const signInReady = () =>
  Boolean(document.querySelector('#auth-screen[data-auth-state="signed_out"] #sign-in-submit:not([disabled])'));
const mapReady = () => Boolean(window.__outpost && window.__outpost.ready);

async function fill(browser, sel, value) {
  const el = await browser.$(sel);
  await el.waitForDisplayed({ timeout: 10_000, timeoutMsg: `${sel} is not shown` });
  await el.setValue(value);
}

/** First run on `dir`: creates the account; returns its TOTP secret. */
async function setupAccount(driver, dir) {
  const browser = await driver.session(["--demo", "--data-dir", dir, "--user", USER, "--idle-lock-min", "0"]);
  try {
    await until(browser, () => document.querySelector("#auth-screen")?.getAttribute("data-auth-state") === "setup", Date.now(), "the first-run screen");
    await fill(browser, "#auth-display-name", "Bench");
    await fill(browser, "#auth-password", PASSWORD);
    await fill(browser, "#auth-password2", PASSWORD);
    await (await browser.$("#setup-next")).click();
    const secretEl = await browser.$("#totp-secret");
    await secretEl.waitForDisplayed({ timeout: 60_000, timeoutMsg: "no TOTP secret after creating the account" });
    const secret = await secretEl.getAttribute("data-totp-secret");
    await fill(browser, "#auth-code", totp(secret));
    await (await browser.$("#setup-confirm")).click();
    await until(browser, mapReady, Date.now(), "the map after the first-run setup");
    return secret;
  } finally {
    await browser.deleteSession();
  }
}

/**
 * Types the account's password and code, clicks "sign in"; the ms from the click to the map
 * being created (`window.__outpost` set: signed in, console state loaded, MapLibre started) and
 * to the map being ready.
 */
async function signIn(browser, secret) {
  await fill(browser, "#auth-user", USER);
  await fill(browser, "#auth-password", PASSWORD);
  await fill(browser, "#auth-code", totp(secret));
  const button = await browser.$("#sign-in-submit");
  const started = Date.now();
  await button.click();
  const created = await until(browser, () => Boolean(window.__outpost), started, "the map after signing in");
  const ready = await until(browser, mapReady, started, "window.__outpost.ready after signing in");
  return { created, ready };
}

/** pid -> { ppid, name, exe } of every process. */
function processes() {
  const out = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const argv0 = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0")[0];
      out.set(Number(d), { ppid, name, argv0 });
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** `root` and all its descendants, in breadth-first order. */
function subtree(all, root) {
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, p] of all) if (p.ppid === tree[i]) tree.push(pid);
  }
  return tree;
}

/**
 * PSS, USS and RSS (KiB) of the one process started from `bin` under this run's tauri-driver
 * (`driverPid`; another run of the same binary on the machine is not ours) and of all its
 * descendants (WebKit's processes).
 */
function treeMemory(driverPid, bin) {
  const all = processes();
  const roots = subtree(all, driverPid).filter((pid) => all.get(pid).argv0 === bin);
  if (roots.length !== 1) throw new Error(`${roots.length} processes of ${bin} under tauri-driver (want 1)`);
  const procs = subtree(all, roots[0]).map((pid) => {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(rollup)?.[1] ?? NaN);
    const pss = field("Pss");
    if (!(pss >= 0)) throw new Error(`no Pss in /proc/${pid}/smaps_rollup`);
    return { pid, name: all.get(pid).name, rss_kib: rss, pss_kib: pss, uss_kib: field("Private_Clean") + field("Private_Dirty") };
  });
  const sum = (k) => procs.reduce((s, p) => s + p[k], 0);
  const m = { pss_kib: sum("pss_kib"), uss_kib: sum("uss_kib"), rss_kib: sum("rss_kib"), procs };
  if (!(m.pss_kib > 0)) throw new Error(`no PSS read for ${bin}`);
  if (!procs.some((p) => p.name.startsWith("WebKitWebProces"))) {
    throw new Error(`no WebKitWebProcess under ${bin}: ${procs.map((p) => p.name).join(", ")}`);
  }
  return m;
}

function showMemory(what, m) {
  for (const p of m.procs) {
    log(`  ${what}: ${p.name.padEnd(16)} pid ${String(p.pid).padEnd(8)} RSS ${(p.rss_kib / 1024).toFixed(0).padStart(4)} MiB  PSS ${(p.pss_kib / 1024).toFixed(0).padStart(4)} MiB`);
  }
  log(`${what}: PSS ${(m.pss_kib / 1024).toFixed(0)} MiB, USS ${(m.uss_kib / 1024).toFixed(0)} MiB, RSS ${(m.rss_kib / 1024).toFixed(0)} MiB (${m.procs.length} processes)`);
}

function copyOf(template) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "outpost-bench-desktop-"));
  cpSync(template, dir, { recursive: true });
  return dir;
}

async function main() {
  if (!BLANK) throw new Error("BLANK_BIN is not set (the blank Tauri window's binary)");
  const pack = demoPack();
  const driver = new Driver();
  await driver.start();
  const temps = [];
  const result = { runs: RUNS, mem_runs: MEM_RUNS, idle_s: IDLE_S, launches: [], blank: [], app: [] };
  try {
    // The data directory every launch copies: the demo pack and one account.
    const template = mkdtempSync(path.join(os.tmpdir(), "outpost-bench-desktop-template-"));
    temps.push(template);
    copyFileSync(pack, path.join(template, DEMO_PACK));
    const secret = await setupAccount(driver, template);
    log("account created in the template data directory");

    for (let i = 1; i <= RUNS; i++) {
      const dir = copyOf(template);
      temps.push(dir);
      const started = Date.now();
      const browser = await driver.session(["--demo", "--data-dir", dir, "--user", USER, "--idle-lock-min", "0"]);
      try {
        const signInMs = await until(browser, signInReady, started, "the sign-in screen");
        const { created, ready: mapMs } = await signIn(browser, secret);
        result.launches.push({ sign_in_ms: signInMs, map_created_ms: created, map_ms: mapMs, total_ms: signInMs + mapMs });
        log(`launch ${i}: sign-in screen after ${signInMs} ms; map created ${created} ms and ready ${mapMs} ms after signing in; ${signInMs + mapMs} ms in all`);
      } finally {
        await browser.deleteSession();
      }
    }

    for (let r = 1; r <= MEM_RUNS; r++) {
      // The blank window.
      let browser = await driver.session([], BLANK);
      try {
        await until(browser, () => document.readyState === "complete", Date.now(), "the blank page");
        log(`blank window up; idling ${IDLE_S} s`);
        await sleep(IDLE_S * 1000);
        const m = treeMemory(driver.proc.pid, BLANK);
        showMemory("blank window", m);
        result.blank.push(m);
      } finally {
        await browser.deleteSession();
      }
      // The console: the pack open, no replay, signed in.
      const dir = copyOf(template);
      temps.push(dir);
      browser = await driver.session(["--pack", path.join(dir, DEMO_PACK), "--data-dir", dir, "--user", USER, "--idle-lock-min", "0"]);
      try {
        await until(browser, signInReady, Date.now(), "the sign-in screen");
        await signIn(browser, secret);
        log(`console signed in, map ready; idling ${IDLE_S} s`);
        await sleep(IDLE_S * 1000);
        const m = treeMemory(driver.proc.pid, BIN);
        showMemory("console", m);
        result.app.push(m);
      } finally {
        await browser.deleteSession();
      }
    }
  } finally {
    await driver.stop();
    for (const d of temps) rmSync(d, { recursive: true, force: true });
  }

  const med = (xs, k) => median(xs.map((x) => x[k]));
  result.summary = {
    sign_in_ms: med(result.launches, "sign_in_ms"),
    map_created_ms: med(result.launches, "map_created_ms"),
    map_ms: med(result.launches, "map_ms"),
    total_ms: med(result.launches, "total_ms"),
    total_min_ms: Math.min(...result.launches.map((l) => l.total_ms)),
    total_max_ms: Math.max(...result.launches.map((l) => l.total_ms)),
    blank_pss_kib: med(result.blank, "pss_kib"),
    app_pss_kib: med(result.app, "pss_kib"),
    blank_uss_kib: med(result.blank, "uss_kib"),
    app_uss_kib: med(result.app, "uss_kib"),
  };
  result.summary.ratio = result.summary.app_pss_kib / result.summary.blank_pss_kib;
  result.summary.uss_ratio = result.summary.app_uss_kib / result.summary.blank_uss_kib;
  log(`summary: ${JSON.stringify(result.summary)}`);
  if (RESULT_JSON) writeFileSync(RESULT_JSON, JSON.stringify(result, null, 2));
}

main().catch((e) => {
  console.error(`bench/desktop: ${e.message}`);
  process.exit(1);
});
