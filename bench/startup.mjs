// Cold start to interactive map and idle memory; run by bench/startup.sh (under Xvfb and a
// session bus). Prints one line per launch and a summary.
//
// "Cold start" = a new app process on a new data directory (first database creation and
// migrations included), with the demo pack already built; "interactive" = the first poll
// (every 20 ms) that sees window.__outpost.ready (style loaded, tiles and units drawn).
// The time includes WebKitWebDriver launching the app (a few ms).

import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { BIN, DEMO_PACK, Driver, demoPack } from "../tests/e2e/driver.mjs";

const RUNS = Number(process.env.RUNS ?? 5);
const IDLE_S = Number(process.env.IDLE_S ?? 30);

function fresh(pack) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "outpost-bench-"));
  copyFileSync(pack, path.join(dir, DEMO_PACK));
  return dir;
}

async function untilReady(browser, started) {
  for (;;) {
    const ready = await browser.execute(() => Boolean(window.__outpost && window.__outpost.ready));
    if (ready) return Date.now() - started;
    if (Date.now() - started > 120_000) throw new Error("not ready within 120 s");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every process: pid -> { ppid, name, cmdline }. */
function processes() {
  const out = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmdline = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").join(" ");
      out.set(Number(d), { ppid, name, cmdline });
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** The app process started with `dataDir`, and all its descendants (WebKit's processes). */
function appTree(dataDir) {
  const all = processes();
  const root = [...all].find(([, p]) => p.cmdline.startsWith(BIN) && p.cmdline.includes(dataDir));
  if (!root) throw new Error(`no process of ${BIN} with ${dataDir}`);
  const tree = [root[0]];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, p] of all) if (p.ppid === tree[i]) tree.push(pid);
  }
  return tree.map((pid) => ({ pid, name: all.get(pid).name }));
}

function memKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  let pss = 0;
  try {
    pss = Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0);
  } catch {
    pss = NaN;
  }
  return { rss, pss };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const pack = demoPack();
  const driver = new Driver();
  await driver.start();
  const times = [];
  try {
    for (let i = 1; i <= RUNS; i++) {
      const dir = fresh(pack);
      const started = Date.now();
      const browser = await driver.session(["--demo", "--data-dir", dir]);
      const ms = await untilReady(browser, started);
      times.push(ms);
      console.log(`launch ${i}: interactive map after ${ms} ms`);
      await browser.deleteSession();
      rmSync(dir, { recursive: true, force: true });
    }
    console.log(`cold start to interactive map: median ${median(times)} ms, min ${Math.min(...times)} ms, max ${Math.max(...times)} ms over ${RUNS} launches (${BIN})`);

    // Idle: the pack open, no replay.
    const dir = fresh(pack);
    const browser = await driver.session(["--pack", path.join(dir, DEMO_PACK), "--data-dir", dir]);
    await browser.waitUntil(() => browser.execute(() => Boolean(window.__outpost)), { timeout: 120_000 });
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    let rss = 0;
    let pss = 0;
    for (const { pid, name } of appTree(dir)) {
      const m = memKiB(pid);
      rss += m.rss;
      pss += m.pss;
      console.log(`  ${name.padEnd(22)} pid ${String(pid).padEnd(8)} RSS ${(m.rss / 1024).toFixed(0).padStart(5)} MiB  PSS ${(m.pss / 1024).toFixed(0).padStart(5)} MiB`);
    }
    console.log(`idle memory after ${IDLE_S} s (app + WebKit processes): RSS ${(rss / 1024).toFixed(0)} MiB, PSS ${(pss / 1024).toFixed(0)} MiB`);
    await browser.deleteSession();
    rmSync(dir, { recursive: true, force: true });
  } finally {
    await driver.stop();
  }
}

main().catch((e) => {
  console.error(`bench/startup: ${e.message}`);
  process.exit(1);
});
