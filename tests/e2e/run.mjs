// End-to-end test of the real Outpost app: tauri-driver + WebKitWebDriver drive the release
// or debug binary (built with the `custom-protocol` feature, so the UI comes from the bundle)
// on the demo area with a temporary data directory.
//
//   0. sign-in (issue 6): launch `outpost --demo --data-dir TMP --user e2e`; the first-run screen
//      creates the account (user pre-filled from --user, display name, password twice), shows
//      the TOTP secret as text and a QR code; the test reads the secret off the screen,
//      computes the code in node (HMAC-SHA1, RFC 6238) and confirms; the auth bar then names
//      the commander;
//   1. wait for window.__outpost.ready (map drawn);
//   2. the map's `units` layer has as many features as demo/andorra-roster.json has units;
//   3. create an incident through the UI (#new-incident, #incident-*), see it in the queue
//      and its timeline in the detail panel; save tests/e2e/out/console.png;
//   4. on the real backend (issue 5): the incident's card ranks the closest available units by
//      road ETA (rows = closest_units of the app), one route each on the map; D dispatches the
//      first (its board status changes); coverage 1-3-5 shows a 3-minute figure in 0..100 %; a
//      road closure drawn with two clicks on a ranked unit's route is saved, listed, drawn and
//      avoided (no ETA from an unchanged fix gets lower), then lifted; the map search lists
//      the backend's hits for "Escaldes" and picking one moves the map there; a one-post CSV
//      imported through the import panel is drawn on the map;
//      then lock (auth bar) → the lock screen names the person, a wrong password is refused
//      with its message, the right one unlocks and the map is back;
//   5. quit, relaunch on the same data directory with --idle-lock-min 1: sign in (the account
//      is listed as known, no offline limit), the incident and its timeline are there; then
//      no input for a minute locks the console by itself;
//   6. with a real sync server (`outpost-server cert init`, `user add`, `serve` over TLS on a
//      free port): a new console (`--server https://127.0.0.1:PORT --ca ca.pem`) shows the enroll
//      screen; enrolling with the account's password and code signs in online as dispatcher; an
//      incident pushed under the session reaches the server (nothing parked, the outbox empties,
//      the link is online); sign out, then an online sign-in again. Skipped with E2E_NO_SERVER=1.
//
// Run under a display and a session bus, as scripts/test does:
//   OUTPOST_BIN=target/debug/outpost dbus-run-session -- xvfb-run -a -s '-screen 0 1600x1000x24 -noreset' node tests/e2e/run.mjs
// Environment: OUTPOST_BIN (default target/debug/outpost), E2E_KEEP=1 keeps the temp dir,
// E2E_TIMEOUT_S (default 180) bounds each wait for the map, E2E_NO_SERVER=1 skips step 6,
// E2E_ONLY=server runs only step 6, E2E_DOCS_SHOT=1 also saves
// docs/screenshot.png after E2E_DOCS_SHOT_WAIT_S (default 60) seconds of replay; E2E_DOCS_SHOT_ZH=1
// saves the Chinese README screenshots of issue 5 (docs/closest-units-zh.png, coverage-zh.png,
// closure-zh.png) the same way. E2E_DOCS_SHOT_SIGNIN=1 first saves the Chinese README screenshots
// of issue 6 on a throwaway data directory of their own (docs/signin-zh.png: the first-run setup
// of a fictional commander li.wei / 李伟 with the TOTP secret as text and its QR code;
// docs/locked-zh.png: that console locked); E2E_ONLY=signin then runs only that part.

import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from "node:fs";
import { createHmac } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { BIN, DEMO_PACK, Driver, OUT, ROOT, ROSTER, WAIT_MS, demoPack, fail, freePort, log, waitForPort, waitReady } from "./driver.mjs";

/** The first account's password (the test's own; the data directory is a temp dir). */
const PASSWORD = "e2e pass phrase 2026";

/** Decodes RFC 4648 base32 (A–Z, 2–7; spaces and padding ignored). */
export function base32Decode(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const clean = text.replace(/[\s=]/g, "").toUpperCase();
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const v = alphabet.indexOf(ch);
    if (v < 0) fail(`not base32: ${JSON.stringify(ch)} in the TOTP secret`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The RFC 6238 code (HMAC-SHA1, 6 digits, 30 s steps) of a base32 secret at `ms` (Unix ms). */
export function totp(secret, ms = Date.now()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(ms / 1000 / 30)));
  const mac = createHmac("sha1", base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, "0");
}

/** Waits for the sign-in screen in `state` (setup, signed_out, locked, …). */
async function authScreen(browser, state) {
  await browser.waitUntil(
    () => browser.execute(() => document.querySelector("#auth-screen")?.getAttribute("data-auth-state") ?? null).then((s) => s === state),
    { timeout: WAIT_MS, interval: 250, timeoutMsg: `the sign-in screen "${state}" did not show` },
  );
}

/** Types into an input found by CSS selector. */
async function fill(browser, sel, value) {
  const el = await browser.$(sel);
  await el.waitForDisplayed({ timeout: 10_000, timeoutMsg: `${sel} is not shown` });
  await el.setValue(value);
}

/** The message of the sign-in screen's error line, waiting for it to show. */
async function authError(browser) {
  return until(
    browser,
    () => browser.execute(() => document.querySelector("#auth-error [data-error-message]")?.textContent ?? null),
    15_000,
    "no error message on the sign-in screen",
  );
}

/** First run: creates the account, reads the TOTP secret off the screen, confirms with its code. */
async function firstRunSetup(browser) {
  await authScreen(browser, "setup");
  const hint = await (await browser.$("#auth-user")).getValue();
  if (hint !== "e2e") fail(`--user e2e should pre-fill the login name, got ${JSON.stringify(hint)}`);
  await fill(browser, "#auth-display-name", "端到端 测试");
  await fill(browser, "#auth-password", PASSWORD);
  await fill(browser, "#auth-password2", PASSWORD);
  await (await browser.$("#setup-next")).click();
  const secretEl = await browser.$("#totp-secret");
  await secretEl.waitForDisplayed({ timeout: 60_000, timeoutMsg: "no TOTP secret after creating the account" });
  const secret = await secretEl.getAttribute("data-totp-secret");
  const shown = (await secretEl.getText()).replace(/\s/g, "");
  if (shown !== secret) fail(`the secret shown (${shown}) differs from the one in data-totp-secret (${secret})`);
  // The QR code is drawn in the page (SVG data URL) and loaded under the CSP.
  const qr = await until(
    browser,
    () => browser.execute(() => {
      const img = document.querySelector("#totp-qr");
      return img && img.complete && img.naturalWidth > 0 ? img.getAttribute("src").slice(0, 30) : null;
    }),
    15_000,
    "the QR code of the TOTP secret did not load",
  );
  if (!qr.startsWith("data:image/svg+xml")) fail(`the QR code is not a local SVG: ${qr}`);
  // A wrong code is refused with the backend's message.
  const wrong = totp(secret) === "000000" ? "111111" : "000000";
  await fill(browser, "#auth-code", wrong);
  await (await browser.$("#setup-confirm")).click();
  const message = await authError(browser);
  log(`a wrong code is refused: "${message}"`);
  await fill(browser, "#auth-code", totp(secret));
  await (await browser.$("#setup-confirm")).click();
  const bar = await browser.$("#auth-bar");
  await bar.waitForExist({ timeout: WAIT_MS, timeoutMsg: "no auth bar after confirming the first account" });
  const who = await browser.execute(() => {
    const b = document.querySelector("#auth-bar");
    return { user: b.getAttribute("data-user"), role: b.getAttribute("data-role"), mode: b.getAttribute("data-sign-in") };
  });
  if (who.user !== "e2e" || who.role !== "commander" || who.mode !== "local") fail(`auth bar after setup: ${JSON.stringify(who)}`);
  log(`first account created and signed in: ${JSON.stringify(who)}`);
  return secret;
}

/** Locks from the auth bar; a wrong password is refused; the right one unlocks and the map is back. */
async function lockAndUnlock(browser) {
  await (await browser.$("#lock-console")).click();
  await authScreen(browser, "locked");
  const locked = await browser.execute(() => document.querySelector("#locked-user")?.getAttribute("data-locked-user"));
  if (locked !== "e2e") fail(`the lock screen names ${locked}, not e2e`);
  const rows = await browser.execute(() => document.querySelectorAll("[data-incident-id]").length);
  if (rows !== 0) fail(`the lock screen still shows ${rows} incidents`);
  await fill(browser, "#auth-password", "not the password at all");
  await (await browser.$("#unlock-submit")).click();
  log(`locked; a wrong password is refused: "${await authError(browser)}"`);
  await fill(browser, "#auth-password", PASSWORD);
  await (await browser.$("#unlock-submit")).click();
  await waitReady(browser);
  log("unlocked; map ready again");
}

/** A later run: the account is listed as known; password and code sign in. */
async function signInAgain(browser, secret) {
  await authScreen(browser, "signed_out");
  const known = await browser.execute(() =>
    [...document.querySelectorAll("[data-known-user]")].map((li) => ({
      user: li.getAttribute("data-known-user"),
      until: li.querySelector("[data-offline-until]")?.getAttribute("data-offline-until"),
    })),
  );
  if (known.length !== 1 || known[0].user !== "e2e" || known[0].until !== "") fail(`known users: ${JSON.stringify(known)}`);
  await fill(browser, "#auth-user", "e2e");
  await fill(browser, "#auth-password", PASSWORD);
  await fill(browser, "#auth-code", totp(secret));
  await (await browser.$("#sign-in-submit")).click();
  await (await browser.$("#auth-bar")).waitForExist({ timeout: WAIT_MS, timeoutMsg: "no auth bar after signing in again" });
  log("signed in again (known user, password and code)");
}

/** No input for the idle time (--idle-lock-min 1) locks the console by itself. */
async function idleLock(browser) {
  const t0 = Date.now();
  await browser.waitUntil(
    () => browser.execute(() => document.querySelector("#auth-screen")?.getAttribute("data-auth-state") === "locked"),
    { timeout: 120_000, interval: 1000, timeoutMsg: "the console did not lock after a minute without input" },
  );
  const s = (Date.now() - t0) / 1000;
  if (s < 30) fail(`the console locked after ${s.toFixed(0)} s without input; --idle-lock-min 1 means 60 s`);
  log(`idle lock after ${s.toFixed(0)} s without input`);
}

/**
 * The sync server binary: $OUTPOST_SERVER_BIN, else beside the app's (the workspace's tests
 * build it), else target/debug/outpost-server, built with `cargo build -p outpost-server` when
 * none is there.
 */
function serverBinary() {
  if (process.env.OUTPOST_SERVER_BIN) return path.resolve(ROOT, process.env.OUTPOST_SERVER_BIN);
  const candidates = [path.join(path.dirname(BIN), "outpost-server"), path.join(ROOT, "target/debug/outpost-server")];
  const found = candidates.find((p) => existsSync(p));
  if (found) return found;
  log("no outpost-server binary yet: cargo build -p outpost-server");
  const r = spawnSync("cargo", ["build", "-p", "outpost-server"], { cwd: ROOT, stdio: "inherit" });
  if (r.status !== 0 || !existsSync(candidates[1])) fail(`cargo build -p outpost-server failed (exit ${r.status})`);
  return candidates[1];
}
let SERVER_BIN = "";

/** Runs the server's CLI to completion; its stdout, or a failure naming the command. */
function serverCli(args, input) {
  const r = spawnSync(SERVER_BIN, args, { input, encoding: "utf8" });
  if (r.status !== 0) fail(`outpost-server ${args.join(" ")} failed (exit ${r.status}): ${r.stderr}`);
  return r.stdout;
}

/**
 * A TLS sync server in a temp dir with one dispatcher account; resolves to
 * { url, ca, user, password, secret, stop }.
 */
async function startServer(dir) {
  serverCli(["cert", "init", "--data", dir, "--name", "127.0.0.1"]);
  const user = "e2e.online";
  const password = "online pass phrase 2026";
  const out = serverCli(["user", "add", user, "--role", "dispatcher", "--display-name", "在线 调度", "--data", dir, "--password-stdin", "--no-password-change"], `${password}\n`);
  const secret = out.match(/TOTP secret \(base32\): ([A-Z2-7]+)/)?.[1];
  if (!secret) fail(`outpost-server user add printed no TOTP secret: ${out}`);
  const port = await freePort();
  const proc = spawn(SERVER_BIN, ["serve", "--data", dir, "--listen", `127.0.0.1:${port}`], { stdio: ["ignore", "inherit", "inherit"] });
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  await waitForPort(port, 30_000);
  return {
    url: `https://127.0.0.1:${port}`,
    ca: path.join(dir, "tls", "ca.pem"),
    user,
    password,
    secret,
    stop: async () => {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * A code the server has not accepted yet: the server takes each 30-second step once and
 * allows ±1 step, so this is the code of the step after the current one, once that is later
 * than `used` (waiting for the clock when needed). Returns { code, step }.
 */
async function freshCode(secret, used) {
  for (;;) {
    const step = Math.floor(Date.now() / 30_000) + 1;
    if (step > used) return { code: totp(secret, step * 30_000), step };
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Signs in on the signed_out screen with `user`, a password and a fresh code; returns the step used. */
async function signInOnline(browser, server, used) {
  await authScreen(browser, "signed_out");
  const fresh = await freshCode(server.secret, used);
  await fill(browser, "#auth-user", server.user);
  await fill(browser, "#auth-password", server.password);
  await fill(browser, "#auth-code", fresh.code);
  await (await browser.$("#sign-in-submit")).click();
  await browser.waitUntil(
    () => browser.execute(() => document.querySelector("#auth-bar")?.getAttribute("data-sign-in") === "online"),
    { timeout: WAIT_MS, interval: 250, timeoutMsg: "no online sign-in" },
  );
  return fresh.step;
}

/** A new console enrolls with the server, signs in online, pushes an incident, signs out and in. */
async function serverRun(browser, server) {
  await authScreen(browser, "enroll");
  const shown = await (await browser.$("#enroll-server")).getValue();
  if (shown !== server.url) fail(`the enroll screen shows server ${shown}, expected ${server.url}`);
  await fill(browser, "#auth-password", server.password);
  const used = Math.floor(Date.now() / 30_000);
  await fill(browser, "#auth-code", totp(server.secret, used * 30_000));
  await fill(browser, "#enroll-device-name", "e2e 指挥车");
  await (await browser.$("#enroll-submit")).click();
  // The enrollment answers with a session (EnrollResponse.session): signed in online at once,
  // with no second code.
  const after = await until(
    browser,
    () =>
      browser.execute(() =>
        document.querySelector("#auth-bar")
          ? { state: "signed_in" }
          : document.querySelector("#auth-screen")?.getAttribute("data-auth-state") === "signed_out"
            ? { state: "signed_out", message: document.querySelector("[data-auth-message]")?.textContent ?? "" }
            : null,
      ),
    WAIT_MS,
    "neither signed in nor refused after enrolling",
  );
  if (after.state === "signed_out") fail(`enrolled but not signed in; the sign-in screen says: "${after.message}"`);
  const who = await browser.execute(() => {
    const b = document.querySelector("#auth-bar");
    return { user: b.getAttribute("data-user"), role: b.getAttribute("data-role"), mode: b.getAttribute("data-sign-in") };
  });
  if (who.user !== server.user || who.role !== "dispatcher" || who.mode !== "online") fail(`auth bar after enrolling: ${JSON.stringify(who)}`);
  log(`enrolled and signed in: ${JSON.stringify(who)}`);
  await waitReady(browser);
  const created = await backend(browser, "create_incident", {
    args: { incident_type: "theft", priority: null, location: { lat: 42.5069, lon: 1.5212 }, address: "Carrer Major", description: "e2e online" },
  });
  // The push is authorized under the session: nothing parked, the outbox empties, online.
  const synced = await until(
    browser,
    async () => {
      const s = await backend(browser, "sync_status");
      const parked = await backend(browser, "parked_ops");
      if (parked.length) fail(`the server parked ${JSON.stringify(parked)}`);
      return s.state === "online" && s.pending.critical === 0 ? s : null;
    },
    60_000,
    "the incident did not reach the server (sync not online with an empty outbox)",
  );
  log(`incident ${created.summary.id} pushed; link ${synced.state}, server ${synced.server_url}`);
  await (await browser.$("#sign-out")).click();
  await signInOnline(browser, server, used);
  log("signed out and in again online");
}

/**
 * The roster's unit count, and a box around its facilities wide enough for units on patrol
 * (they roam 2.5 km from home): `[[west, south], [east, north]]`, WGS-84 degrees.
 */
function readRoster() {
  const roster = JSON.parse(readFileSync(ROSTER, "utf8"));
  const units = roster.units;
  if (!Array.isArray(units) || units.length === 0) fail(`${ROSTER} has no units array`);
  const pos = (roster.facilities ?? []).map((f) => f.position).filter(Boolean);
  if (pos.length === 0) fail(`${ROSTER} has no facility positions`);
  const pad = 0.04; // ≈ 4 km
  const lons = pos.map((p) => p.lon);
  const lats = pos.map((p) => p.lat);
  return {
    units: units.length,
    bounds: [
      [Math.min(...lons) - pad, Math.min(...lats) - pad],
      [Math.max(...lons) + pad, Math.max(...lats) + pad],
    ],
  };
}

/** Moves the map (no animation) and waits until it has drawn the new view. */
async function jumpAndSettle(browser, view) {
  await browser.execute((v) => {
    const map = window.__outpost.map;
    if (v.bounds) map.fitBounds(v.bounds, { animate: false, padding: 20 });
    else map.jumpTo(v);
  }, view);
  await browser.waitUntil(() => browser.execute(() => !window.__outpost.map.isMoving() && window.__outpost.map.areTilesLoaded()), {
    timeout: 30_000,
    interval: 200,
    timeoutMsg: "the map did not settle after moving",
  });
  await browser.pause(500);
}

/** Distinct unit features the map drew in its `units` layer (ids from feature properties). */
async function drawnUnits(browser) {
  return browser.execute(() => {
    const map = window.__outpost.map;
    if (!map.getLayer("units")) return { error: "no layer named units in the map style", ids: [] };
    const ids = new Set();
    for (const f of map.queryRenderedFeatures({ layers: ["units"] })) {
      ids.add(String(f.properties?.id ?? f.id ?? JSON.stringify(f.geometry)));
    }
    return { ids: [...ids] };
  });
}

/** Waits until the incident detail panel shows `id` with at least `min` timeline rows; returns their kinds. */
async function timelineOf(browser, id, min = 1) {
  let kinds = [];
  await browser.waitUntil(
    async () => {
      kinds = await browser.execute((want) => {
        const panel = document.querySelector("#incident-detail");
        if (!panel || panel.getAttribute("data-incident-id-detail") !== want) return [];
        return [...panel.querySelectorAll("[data-timeline-entry]")].map((e) => e.getAttribute("data-timeline-entry"));
      }, id);
      return kinds.length >= min;
    },
    { timeout: 30_000, interval: 250, timeoutMsg: `the detail panel of incident ${id} showed no timeline` },
  );
  return kinds;
}

/** Calls a command of the real backend from the page (Tauri IPC), resolving to its answer. */
async function backend(browser, command, args) {
  const r = await browser.execute(
    (c, a) =>
      window.__TAURI_INTERNALS__.invoke(c, a).then(
        (ok) => ({ ok }),
        (e) => ({ err: typeof e === "string" ? e : JSON.stringify(e) }),
      ),
    command,
    args,
  );
  if (r.err !== undefined) fail(`${command} failed: ${r.err}`);
  return r.ok;
}

/** The ranked rows of the closest-units list of incident `id`: unit, rank, ETA (s) and its text. */
function closestRowsOf(browser, id) {
  return browser.execute((want) => {
    const list = document.querySelector(`#closest-units[data-closest-incident="${want}"]`);
    if (!list) return [];
    return [...list.querySelectorAll("[data-closest-unit]")].map((li) => ({
      unit: li.getAttribute("data-closest-unit"),
      rank: Number(li.getAttribute("data-rank")),
      etaS: Number(li.querySelector(".closest-eta")?.getAttribute("data-eta-s")),
      eta: li.querySelector(".closest-eta")?.textContent ?? "",
    }));
  }, id);
}

/** Waits for `cond` (an async function returning a truthy value) and returns that value. */
async function until(browser, cond, timeout, timeoutMsg) {
  let value;
  await browser.waitUntil(async () => Boolean((value = await cond())), { timeout, interval: 250, timeoutMsg });
  return value;
}

/** The unit board's status of a unit. */
function boardStatus(browser, unitId) {
  return browser.execute((u) => document.querySelector(`[data-unit-id="${u}"] [data-unit-status]`)?.getAttribute("data-unit-status") ?? null, unitId);
}

/** Route length, metres (equirectangular; plenty for picking points along a route). */
function along(line) {
  const out = [0];
  for (let i = 1; i < line.length; i++) {
    const a = line[i - 1];
    const b = line[i];
    const dx = (b.lon - a.lon) * Math.cos(((a.lat + b.lat) / 2) * (Math.PI / 180)) * 111_320;
    const dy = (b.lat - a.lat) * 110_540;
    out.push(out[i - 1] + Math.hypot(dx, dy));
  }
  return out;
}

/** A left click at a WGS-84 point of the map, through WebDriver pointer actions. */
async function clickMapAt(browser, at) {
  const p = await browser.execute((lon, lat) => {
    const map = window.__outpost.map;
    const box = map.getContainer().getBoundingClientRect();
    const q = map.project([lon, lat]);
    return { x: Math.round(box.left + q.x), y: Math.round(box.top + q.y), inside: q.x > 0 && q.y > 0 && q.x < box.width && q.y < box.height };
  }, at.lon, at.lat);
  if (!p.inside) fail(`the point ${at.lat},${at.lon} is not on the map`);
  await browser
    .action("pointer", { parameters: { pointerType: "mouse" } })
    .move({ x: p.x, y: p.y, origin: "viewport" })
    .down({ button: 0 })
    .up({ button: 0 })
    .perform();
}

/** Two points 2 × `halfGapM` metres apart around the middle of a route (on one road in practice), WGS-84. */
function middleOfRoute(line, halfGapM = 30) {
  const dist = along(line);
  const total = dist[dist.length - 1];
  const at = (share) => {
    const want = total * share;
    const i = Math.max(1, dist.findIndex((d) => d >= want));
    const f = (want - dist[i - 1]) / Math.max(1e-9, dist[i] - dist[i - 1]);
    return { lat: line[i - 1].lat + (line[i].lat - line[i - 1].lat) * f, lon: line[i - 1].lon + (line[i].lon - line[i - 1].lon) * f };
  };
  const gap = Math.min(0.2, halfGapM / Math.max(total, 1));
  return [at(0.5 - gap), at(0.5 + gap)];
}

/**
 * Opens the closures panel and closes the road between `a` and `b` (two clicks on the map,
 * the line read from the roads by the backend) for flooding, 3 hours; returns the reason, the
 * backend's view of the saved closure and the segment count the row shows.
 */
async function drawFloodClosure(browser, a, b) {
  await (await browser.$("#open-closures")).click();
  await (await browser.$("#closures-panel")).waitForExist({ timeout: 10_000, timeoutMsg: "#open-closures opened no #closures-panel" });
  await (await browser.$("#closure-draw-line")).click();
  await (await browser.$("#closure-drawing")).waitForExist({ timeout: 10_000, timeoutMsg: "#closure-draw-line started no drawing" });
  await jumpAndSettle(browser, { center: [(a.lon + b.lon) / 2, (a.lat + b.lat) / 2], zoom: 17 });
  await clickMapAt(browser, a);
  await (await browser.$("[data-draw-count='1']")).waitForExist({ timeout: 10_000, timeoutMsg: "the first click on the map added no closure point" });
  await clickMapAt(browser, b);
  await (await browser.$("[data-draw-count='2']")).waitForExist({ timeout: 10_000, timeoutMsg: "the second click on the map added no closure point" });
  // The backend's road_line follows the road between the clicks; finishing waits for it.
  const finish = await browser.$("#closure-finish");
  await browser.waitUntil(() => finish.isEnabled(), {
    timeout: 15_000,
    interval: 250,
    timeoutMsg: "the closure line was never read from the roads (#closure-finish stays disabled)",
  });
  await finish.click();
  await (await browser.$("#closure-form")).waitForExist({ timeout: 10_000, timeoutMsg: "finishing the drawing opened no #closure-form" });
  await (await browser.$("[data-preset='closure.preset.flooding']")).click();
  await (await browser.$("#closure-end")).selectByAttribute("value", "3");
  const reason = await (await browser.$("#closure-reason")).getValue();
  if (!reason) fail("the flooding preset left the closure reason empty");
  await (await browser.$("#closure-save")).click();
  const row = await browser.$("[data-closure-state='active']");
  await row.waitForExist({
    timeout: 15_000,
    timeoutMsg: `the saved closure is not listed: ${await browser.execute(() => document.querySelector("#closure-error")?.textContent ?? "no error shown")}`,
  });
  const rowText = await row.getText();
  if (!rowText.includes(reason)) fail(`the closure row "${rowText}" lacks its reason "${reason}"`);
  const segments = Number(await browser.execute(() => document.querySelector("[data-closure-state='active'] [data-closure-segments]")?.textContent?.match(/\d+/)?.[0]));
  const listed = await backend(browser, "road_closures", {});
  const saved = listed.find((c) => c.active);
  if (!saved || saved.closure.shape.type !== "line" || saved.closed_segments < 1) fail(`road_closures after saving: ${JSON.stringify(listed)}`);
  if (segments !== saved.closed_segments) fail(`the closure row shows ${segments} closed segments, the backend ${saved.closed_segments}`);
  return { reason, saved, segments };
}

/**
 * Hovers the middle of a saved line closure and returns its popup's text and the contrast ratio
 * of the popup's text on its background (WCAG 2 relative luminance; 4.5 is the AA minimum).
 */
async function hoverClosure(browser, saved) {
  const pts = saved.closure.shape.points;
  const i = Math.floor(pts.length / 2);
  const m = pts[i];
  const n = pts[Math.max(0, i - 1)];
  const at = await browser.execute(
    (lon, lat) => {
      const map = window.__outpost.map;
      const box = map.getContainer().getBoundingClientRect();
      const q = map.project([lon, lat]);
      return { x: Math.round(box.left + q.x), y: Math.round(box.top + q.y) };
    },
    (m.lon + n.lon) / 2,
    (m.lat + n.lat) / 2,
  );
  await browser.action("pointer", { parameters: { pointerType: "mouse" } }).move({ x: at.x, y: at.y, origin: "viewport" }).perform();
  await (await browser.$(".closure-popup")).waitForExist({ timeout: 5_000, timeoutMsg: "hovering the closure line shows no .closure-popup" });
  return browser.execute(() => {
    const el = document.querySelector(".closure-popup .maplibregl-popup-content");
    const cs = getComputedStyle(el);
    const rgb = (c) => (c.match(/[\d.]+/g) ?? []).slice(0, 3).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const [a, b] = [lum(rgb(cs.color)), lum(rgb(cs.backgroundColor))].sort((x, y) => y - x);
    return { text: el.textContent, contrast: (a + 0.05) / (b + 0.05), color: cs.color, background: cs.backgroundColor };
  });
}

/** Comparable ETAs (issue 5): units at the same position in both rankings (a standing unit re-reports its fix). */
function sameFixEtas(before, after) {
  const key = (u) => (u.fix ? `${u.fix.position.lat} ${u.fix.position.lon}` : null);
  const prev = new Map(before.candidates.map((u) => [u.unit_id, u]));
  const out = [];
  for (const u of after.candidates) {
    const p = prev.get(u.unit_id);
    if (!p || p.eta_s === null || key(p) === null || key(p) !== key(u)) continue;
    out.push({ unit: u.unit_id, before: p.eta_s, after: u.eta_s, problem: u.problem });
  }
  return out;
}

/**
 * Issue 5 on the real backend: the card of incident `id` ranks the closest available units by
 * road ETA (the router of the app, not the mock); D dispatches the first; coverage 1-3-5 shows
 * its 3-minute figure; a road closure drawn with two clicks on the first unit's route is saved,
 * listed and avoided (no comparable ETA gets lower), then lifted.
 */
async function dispatchIntelligence(browser, id) {
  if (await browser.execute(() => "__outpostMock" in window)) fail("the mock backend is installed in the real app");

  // 1. Closest available units with ETAs.
  const rows = await until(
    browser,
    async () => {
      const r = await closestRowsOf(browser, id);
      return r.length > 0 && r.every((x) => Number.isFinite(x.etaS) && x.etaS > 0) ? r : null;
    },
    60_000,
    `the card of ${id} showed no ranked unit with an ETA`,
  );
  for (const [i, r] of rows.entries()) {
    if (r.rank !== i + 1) fail(`closest units: row ${i} has rank ${r.rank}`);
    if (!/\d+:\d\d|\d+\s*(秒|分)/.test(r.eta)) fail(`closest units: ${r.unit} shows ETA text "${r.eta}"`);
    if (i > 0 && r.etaS < rows[i - 1].etaS) fail(`closest units: not by ETA: ${JSON.stringify(rows)}`);
  }
  // The rows are the backend's ranking (retried: units move and the list refreshes on changes).
  let ranking = null;
  await until(
    browser,
    async () => {
      ranking = await backend(browser, "closest_units", { args: { incident_id: id } });
      const ranked = ranking.candidates.filter((u) => u.eta_s !== null).slice(0, 5).map((u) => u.unit_id);
      const shown = (await closestRowsOf(browser, id)).map((r) => r.unit);
      return ranked.length > 0 && shown.slice(0, 5).join() === ranked.join();
    },
    20_000,
    `the closest-units rows of ${id} never matched the backend's closest_units ranking`,
  );
  const ranked = ranking.candidates.filter((u) => u.eta_s !== null);
  log(
    `closest units of ${id} (router ${ranking.took_ms} ms): ` +
      ranked.slice(0, 5).map((u) => `${u.callsign} ${u.eta_s.toFixed(0)} s ${((u.distance_m ?? 0) / 1000).toFixed(1)} km`).join(", "),
  );
  // One route per shown unit on the map (five at most).
  const routeCount = Math.min(5, ranked.length);
  await until(
    browser,
    async () => browser.execute(async (n) => {
      const src = window.__outpost.map.getSource("routes");
      return Boolean(src) && (await src.getData()).features.length === n;
    }, routeCount),
    10_000,
    `the map's routes source does not hold ${routeCount} routes`,
  );

  // 2. D dispatches the first ranked unit (focus outside any text field). The list refreshes
  //    as units move, so the unit is read from the assignment D made, and it must have been
  //    in the list just before.
  const shownBefore = (await closestRowsOf(browser, id)).map((r) => r.unit);
  await (await browser.$("#closest-title")).click();
  await browser.keys("d");
  const first = await until(
    browser,
    async () => browser.execute(() => document.querySelector("#incident-detail [data-assignment-unit]")?.getAttribute("data-assignment-unit") ?? null),
    15_000,
    `D assigned no unit to ${id} (the list showed ${shownBefore.join(", ")})`,
  );
  if (!shownBefore.includes(first)) fail(`D dispatched ${first}, not in the closest-units list just before (${shownBefore.join(", ")})`);
  const assigned = await browser.execute(() => document.querySelectorAll("#incident-detail [data-assignment-unit]").length);
  if (assigned !== 1) fail(`one D press assigned ${assigned} units to ${id}`);
  const status = await until(
    browser,
    async () => {
      const st = await boardStatus(browser, first);
      return st && st !== "available" ? st : null;
    },
    15_000,
    `D dispatched ${first} but the board still shows it "${await boardStatus(browser, first)}"`,
  );
  if (!["dispatched", "en_route", "on_scene"].includes(status)) fail(`after D, ${first} is "${status}" on the board`);
  await until(browser, async () => !(await closestRowsOf(browser, id)).some((r) => r.unit === first), 15_000, `${first} stays in the closest-units list after its dispatch`);
  log(`D dispatched ${first} (rank ${shownBefore.indexOf(first) + 1} when read): "${status}" on the board`);

  // 3. Coverage 1-3-5: the 3-minute figure.
  await (await browser.$("#coverage-toggle")).click();
  const cov = await until(
    browser,
    async () =>
      browser.execute(() => {
        const f = document.querySelector("#coverage-figure");
        const m = document.querySelector("#coverage-minor");
        return f && m ? { share3: f.getAttribute("data-share3"), text: f.textContent, share1: m.getAttribute("data-share1"), share5: m.getAttribute("data-share5") } : null;
      }),
    60_000,
    "coverage on: no #coverage-figure",
  );
  const pct = [cov.share1, cov.share3, cov.share5].map(Number);
  if (!pct.every((x) => Number.isFinite(x) && x >= 0 && x <= 100) || /NaN/.test(cov.text)) fail(`coverage figures ${JSON.stringify(cov)}`);
  if (!(pct[0] <= pct[1] && pct[1] <= pct[2])) fail(`coverage 1-3-5 not increasing: ${pct.join(", ")}`);
  await until(
    browser,
    async () => browser.execute(async () => (await window.__outpost.map.getSource("coverage")?.getData())?.features?.length > 0),
    10_000,
    "coverage on: the map's coverage source is empty",
  );
  log(`coverage: "${cov.text}" (1/3/5 min ${pct.join("/")} %)`);
  await (await browser.$("#coverage-toggle")).click();
  await (await browser.$("#coverage-figure")).waitForExist({ reverse: true, timeout: 10_000, timeoutMsg: "coverage off: the figure stays" });

  // 4. A road closure half-way along the route of a ranked unit, one standing still if any
  //    (its ETA then must rise: the same fix, its fastest road closed).
  const before = await backend(browser, "closest_units", { args: { incident_id: id } });
  const routed = before.candidates.filter((u) => u.eta_s !== null && u.route && u.route.length >= 2);
  const target = routed.find((u) => (u.fix?.speed_mps ?? 0) < 0.5) ?? routed[0];
  if (!target) fail(`no ranked unit with a route after the dispatch: ${JSON.stringify(before.candidates.map((u) => u.unit_id))}`);
  const [a, b] = middleOfRoute(target.route);
  const { reason, saved, segments } = await drawFloodClosure(browser, a, b);
  log(`closure "${reason}" saved on ${target.callsign}'s route: ${saved.closure.shape.points.length} points, ${saved.closed_segments} road segments closed (row shows ${segments})`);
  await until(
    browser,
    async () => browser.execute(() => window.__outpost.map.queryRenderedFeatures({ layers: ["closures-line"] }).length > 0),
    10_000,
    "the saved closure is not drawn on the map (closures-line)",
  );
  const popup = await hoverClosure(browser, saved);
  if (!popup.text.includes(reason)) fail(`the closure popup "${popup.text}" lacks its reason "${reason}"`);
  if (!(popup.contrast >= 4.5)) fail(`the closure popup is hard to read: ${popup.color} on ${popup.background} (contrast ${popup.contrast.toFixed(2)})`);
  log(`closure popup "${popup.text}" (contrast ${popup.contrast.toFixed(1)})`);

  // The ranking avoids it: it counts the closure and no ETA from an unchanged fix got lower.
  const after = await backend(browser, "closest_units", { args: { incident_id: id } });
  if (after.closures_active < 1) fail(`closest_units after the closure counts ${after.closures_active} active closures`);
  const compared = sameFixEtas(before, after);
  for (const c of compared) {
    if (c.after !== null && c.after < c.before - 1e-6) fail(`with the closure, ${c.unit}'s ETA fell from ${c.before} s to ${c.after} s (same fix)`);
  }
  const cut = compared.find((c) => c.unit === target.unit_id);
  if (cut && cut.after !== null && !(cut.after > cut.before)) fail(`the closure on ${target.callsign}'s route left its ETA at ${cut.after} s (was ${cut.before} s, same fix)`);
  log(
    `with the closure: ${compared.length} units with unchanged fixes, none faster; ${target.callsign} ` +
      (cut ? `${cut.before.toFixed(0)} s -> ${cut.after === null ? cut.problem : `${cut.after.toFixed(0)} s`}` : "moved meanwhile"),
  );
  // Back on the incident card: the list says closures were avoided.
  await (await browser.$(`[data-incident-id="${id}"]`)).click();
  await (await browser.$("#closest-closures")).waitForExist({ timeout: 15_000, timeoutMsg: `the card of ${id} does not say a closure was avoided` });

  // 5. Lift it.
  await (await browser.$("#open-closures")).click();
  const active = await browser.$("[data-closure-state='active']");
  await active.waitForExist({ timeout: 10_000, timeoutMsg: "the active closure is not listed when the panel reopens" });
  await (await active.$("[data-lift]")).click();
  await (await active.$("[data-lift-confirm]")).click();
  await (await browser.$("[data-closure-state='lifted']")).waitForExist({ timeout: 10_000, timeoutMsg: "lifting left no lifted closure in the list" });
  await until(
    browser,
    async () => browser.execute(async () => (await window.__outpost.map.getSource("closures").getData()).features.length === 0),
    10_000,
    "the lifted closure stays on the map",
  );
  const lifted = await backend(browser, "closest_units", { args: { incident_id: id } });
  if (lifted.closures_active !== 0) fail(`closest_units after the lift counts ${lifted.closures_active} active closures`);
  log("closure lifted");
  await (await browser.$(`[data-incident-id="${id}"]`)).click();
}

/** Bounds of WGS-84 points as `[[west, south], [east, north]]`. */
function boundsOf(points) {
  const lons = points.map((p) => p.lon);
  const lats = points.map((p) => p.lat);
  return [
    [Math.min(...lons), Math.min(...lats)],
    [Math.max(...lons), Math.max(...lats)],
  ];
}

/** Saves a README screenshot docs/NAME (1600x1000, the app window). */
async function docsShot(browser, name) {
  mkdirSync(path.join(ROOT, "docs"), { recursive: true });
  await browser.saveScreenshot(path.join(ROOT, "docs", name));
  log(`README screenshot: docs/${name}`);
}

/**
 * README screenshots of issue 5 in Chinese (E2E_DOCS_SHOT_ZH=1), after E2E_DOCS_SHOT_WAIT_S
 * (default 60) seconds of replay: docs/closest-units-zh.png (a demo incident, five routes,
 * the ranked list), docs/coverage-zh.png (coverage on), docs/closure-zh.png (a flood closure on
 * a road, listed, with its popup).
 */
async function docsShotsZh(browser, ownId, roster) {
  await (await browser.$("#open-settings")).click();
  await (await browser.$("#settings-language")).selectByAttribute("value", "zh_cn");
  await (await browser.$("#settings-save")).click();
  await until(browser, async () => browser.execute(() => document.documentElement.lang?.startsWith("zh") || document.body.textContent.includes("事件")), 10_000, "the console did not switch to Chinese");
  await browser.keys("Escape");
  await browser.pause(Number(process.env.E2E_DOCS_SHOT_WAIT_S ?? 60) * 1000);

  // The open demo incident whose five closest units are nearest (the most compact picture).
  const ids = await browser.execute((own) => [...document.querySelectorAll("[data-incident-id]")].map((e) => e.getAttribute("data-incident-id")).filter((i) => i !== own), ownId);
  let chosen = null;
  let best = Infinity;
  for (const id of ids) {
    const r = await backend(browser, "closest_units", { args: { incident_id: id } });
    const fifth = r.candidates.filter((u) => u.eta_s !== null && u.route)[4];
    if (fifth && fifth.eta_s < best) [chosen, best] = [id, fifth.eta_s];
  }
  if (!chosen) fail("no open demo incident ranks five units for the README screenshot");
  await (await browser.$(`[data-incident-id="${chosen}"]`)).click();
  await until(
    browser,
    async () =>
      browser.execute(async (want) => {
        const src = window.__outpost.map.getSource("routes");
        return document.querySelectorAll(`#closest-units[data-closest-incident="${want}"] [data-closest-unit]`).length >= 5 && Boolean(src) && (await src.getData()).features.length === 5;
      }, chosen),
    15_000,
    `incident ${chosen} shows no five routes`,
  );
  const ranking = await backend(browser, "closest_units", { args: { incident_id: chosen } });
  const routePoints = ranking.candidates.flatMap((u) => u.route ?? []);
  // Room for the end labels (a callsign and an ETA to the right of each unit).
  await browser.execute((b) => {
    window.__outpost.map.fitBounds(b, { animate: false, padding: { top: 90, bottom: 90, left: 110, right: 130 } });
    return null;
  }, boundsOf(routePoints));
  await jumpAndSettle(browser, {});
  await docsShot(browser, "closest-units-zh.png");

  // Coverage over the whole demo area.
  await (await browser.$("#coverage-toggle")).click();
  await (await browser.$("#coverage-figure")).waitForExist({ timeout: 60_000, timeoutMsg: "coverage on: no #coverage-figure" });
  // The whole area, right of the coverage box (bottom left of the map).
  await browser.execute((b) => {
    window.__outpost.map.fitBounds(b, { animate: false, padding: { top: 20, bottom: 20, left: 250, right: 10 } });
    return null;
  }, roster.bounds);
  await jumpAndSettle(browser, {});
  await until(browser, async () => browser.execute(async () => (await window.__outpost.map.getSource("coverage").getData()).features.length > 0), 20_000, "no coverage drawn");
  await browser.pause(500);
  await docsShot(browser, "coverage-zh.png");
  await (await browser.$("#coverage-toggle")).click();

  // A flood closure on the route of the unit ranked first, hovered for its popup.
  const target = ranking.candidates.find((u) => u.eta_s !== null && u.route && u.route.length >= 2);
  const [a, b] = middleOfRoute(target.route, 100);
  const { saved } = await drawFloodClosure(browser, a, b);
  await jumpAndSettle(browser, { center: [(a.lon + b.lon) / 2, (a.lat + b.lat) / 2], zoom: 15.5 });
  await hoverClosure(browser, saved);
  await docsShot(browser, "closure-zh.png");
}

/**
 * README screenshots of issue 6 in Chinese (E2E_DOCS_SHOT_SIGNIN=1), on a throwaway data
 * directory of their own: docs/signin-zh.png (the first-run setup of a fictional commander,
 * login li.wei, display name 李伟: the TOTP secret as text and its QR code; the secret is random
 * per run) and docs/locked-zh.png (the console locked for 李伟). `temps` collects the directory.
 */
async function docsShotsSignin(driver, pack, temps) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "outpost-e2e-signin-"));
  temps.push(dir);
  copyFileSync(pack, path.join(dir, DEMO_PACK));
  const browser = await driver.session(["--demo", "--data-dir", dir, "--user", "li.wei", "--idle-lock-min", "30"]);
  try {
    await authScreen(browser, "setup");
    // Before any console the sign-in screens follow the last console's language (App.tsx
    // LANG_KEY in localStorage), else the system's: remember Chinese and load the page again.
    await browser.execute(() => {
      window.localStorage.setItem("outpost.lang", "zh");
      return null;
    });
    await browser.refresh();
    await authScreen(browser, "setup");
    const heading = await (await browser.$("#auth-screen h2")).getText();
    if (!/[\u4e00-\u9fff]/.test(heading)) fail(`the setup screen is not in Chinese: "${heading}"`);
    await fill(browser, "#auth-display-name", "李伟");
    await fill(browser, "#auth-password", PASSWORD);
    await fill(browser, "#auth-password2", PASSWORD);
    await (await browser.$("#setup-next")).click();
    const secretEl = await browser.$("#totp-secret");
    await secretEl.waitForDisplayed({ timeout: 60_000, timeoutMsg: "no TOTP secret after creating the account li.wei" });
    const secret = await secretEl.getAttribute("data-totp-secret");
    await until(
      browser,
      () => browser.execute(() => {
        const img = document.querySelector("#totp-qr");
        return Boolean(img && img.complete && img.naturalWidth > 0);
      }),
      15_000,
      "the QR code of the TOTP secret did not load",
    );
    // Loaded is not yet painted: give WebKit a moment before the screenshot.
    await browser.pause(1500);
    await docsShot(browser, "signin-zh.png");

    await fill(browser, "#auth-code", totp(secret));
    await (await browser.$("#setup-confirm")).click();
    await (await browser.$("#auth-bar")).waitForExist({ timeout: WAIT_MS, timeoutMsg: "no auth bar after confirming li.wei" });
    await waitReady(browser);
    // The console in Chinese too (its settings), so the lock screen stays Chinese.
    await (await browser.$("#open-settings")).click();
    await (await browser.$("#settings-language")).selectByAttribute("value", "zh_cn");
    await (await browser.$("#settings-save")).click();
    await until(browser, async () => browser.execute(() => document.documentElement.lang?.startsWith("zh")), 10_000, "the console did not switch to Chinese");
    await browser.keys("Escape");
    // The language remembered for the sign-in screens follows the settings the console opened
    // with (App.tsx), so it is Chinese only from the next console on: remember it now.
    await browser.execute(() => {
      window.localStorage.setItem("outpost.lang", "zh");
      return null;
    });
    await browser.pause(3000);
    await (await browser.$("#lock-console")).click();
    await authScreen(browser, "locked");
    const who = await (await browser.$("#locked-user")).getText();
    if (!who.includes("李伟")) fail(`the lock screen does not name 李伟: "${who}"`);
    await (await browser.$("#auth-password")).waitForDisplayed({ timeout: 10_000, timeoutMsg: "no password field on the lock screen" });
    await docsShot(browser, "locked-zh.png");
  } catch (e) {
    mkdirSync(OUT, { recursive: true });
    await browser.saveScreenshot(path.join(OUT, "failure.png")).catch(() => {});
    log(`failure screenshot: ${path.relative(ROOT, path.join(OUT, "failure.png"))}; lang ${await browser.execute(() => [window.localStorage.getItem("outpost.lang"), document.documentElement.lang]).catch(() => "?")}`);
    throw e;
  } finally {
    await browser.deleteSession().catch(() => {});
  }
}

/**
 * The map search (issue 5) on the real pack: "Escaldes" lists hits (the backend's
 * search_places near the map centre, same first hit); picking the first moves the map there.
 */
async function mapSearch(browser) {
  const input = await browser.$("#map-search");
  await input.click();
  await input.setValue("Escaldes");
  const hits = await until(
    browser,
    async () => {
      const h = await browser.execute(() => [...document.querySelectorAll("#map-search-box [data-search-hit]")].map((e) => e.textContent));
      return h.length > 0 ? h : null;
    },
    15_000,
    'the map search for "Escaldes" listed no hit',
  );
  const centre = await browser.execute(() => {
    const c = window.__outpost.map.getCenter();
    return { lat: c.lat, lon: c.lng };
  });
  const answer = await backend(browser, "search_places", { args: { text: "Escaldes", near: centre, limit: 8 } });
  if (answer.length !== hits.length) fail(`the map search lists ${hits.length} hits, search_places answers ${answer.length}`);
  const want = answer[0];
  if (![want.name, want.name_zh, want.name_en].some((n) => n && hits[0].includes(n))) fail(`the first hit "${hits[0]}" is not search_places' first (${want.name})`);
  // Picked with the mouse (the list picks on mousedown).
  await (await browser.$("#map-search-box [data-search-hit='0']")).click();
  await until(
    browser,
    async () =>
      browser.execute((p) => {
        const c = window.__outpost.map.getCenter();
        return !window.__outpost.map.isMoving() && Math.abs(c.lat - p.lat) < 2e-4 && Math.abs(c.lng - p.lon) < 2e-4;
      }, want.position),
    10_000,
    `picking "${want.name}" did not move the map to ${want.position.lat}, ${want.position.lon}`,
  );
  log(`map search "Escaldes": ${hits.length} hits, picked ${want.name} (${((want.distance_m ?? 0) / 1000).toFixed(1)} km from the centre)`);
}

/**
 * Facility import (issue 5) on the real backend: a one-row CSV picked in the import panel
 * (opened from the settings) previews without problems, imports, and the post is on the map.
 */
async function facilityImport(browser, dir) {
  const file = path.join(dir, "e2e-posts.csv");
  writeFileSync(file, "id,kind,name_zh,name_en,lat,lon\ne2e-post,post,端到端警务站,E2E Post,42.5092,1.5184\n");
  await (await browser.$("#open-settings")).click();
  await (await browser.$("#open-import")).click();
  await (await browser.$("#import-panel")).waitForExist({ timeout: 10_000, timeoutMsg: "#open-import opened no #import-panel" });
  await (await browser.$("#import-file")).setValue(file);
  await until(browser, async () => browser.execute(() => document.querySelector("#import-file-name")?.textContent.includes("e2e-posts.csv")), 10_000, "the import panel did not take the CSV file");
  await (await browser.$("#import-preview")).click();
  await until(
    browser,
    async () => browser.execute(() => Boolean(document.querySelector("#import-table, [data-import-problem], #import-error"))),
    15_000,
    "the import preview showed no table, problem or error",
  );
  const problems = await browser.execute(() => [...document.querySelectorAll("[data-import-problem], #import-error")].map((e) => e.textContent));
  if (problems.length) fail(`the import preview of a good CSV shows problems: ${problems.join("; ")}`);
  await (await browser.$("[data-import-facility='e2e-post']")).waitForExist({ timeout: 5_000, timeoutMsg: "the import preview lacks e2e-post" });
  await (await browser.$("#import-commit")).click();
  const done = await browser.$("#import-done");
  await done.waitForExist({ timeout: 15_000, timeoutMsg: `the import did not finish: ${await browser.execute(() => document.querySelector("#import-error")?.textContent ?? "no error shown")}` });
  const doneText = await done.getText();
  await jumpAndSettle(browser, { center: [1.5184, 42.5092], zoom: 16 });
  await until(
    browser,
    async () => browser.execute(() => window.__outpost.map.queryRenderedFeatures({ layers: ["facilities"] }).some((f) => f.properties.id === "e2e-post")),
    10_000,
    "the imported post is not drawn on the map (facilities layer)",
  );
  log(`facility import: "${doneText}", e2e-post on the map`);
  await browser.keys("Escape");
}

async function firstRun(browser, roster, dataDir) {
  const expectedUnits = roster.units;
  const secret = await firstRunSetup(browser);
  await waitReady(browser);
  log("map ready");
  // Anything the CSP blocks from here on (tiles of new views, workers, IPC) fails the test.
  await browser.execute(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI}`),
    );
  });

  // Units on the whole demo area must be on screen to be counted (some posts lie outside
  // the initial view); the view is restored afterwards.
  const initialView = await browser.execute(() => {
    const map = window.__outpost.map;
    const c = map.getCenter();
    return { center: [c.lng, c.lat], zoom: map.getZoom() };
  });
  await jumpAndSettle(browser, { bounds: roster.bounds });

  // The replay may still be placing units right after start; give the count a few seconds.
  let drawn = { ids: [] };
  await browser
    .waitUntil(async () => (drawn = await drawnUnits(browser)).ids.length === expectedUnits, { timeout: 20_000, interval: 500 })
    .catch(() => {});
  if (drawn.error) fail(drawn.error);
  if (drawn.ids.length !== expectedUnits) {
    fail(`the units layer drew ${drawn.ids.length} units, the roster has ${expectedUnits}: ${drawn.ids.join(", ")}`);
  }
  log(`units layer: ${drawn.ids.length} features = ${expectedUnits} roster units`);
  await jumpAndSettle(browser, initialView);

  const description = `e2e check ${new Date().toISOString()}`;
  await (await browser.$("#new-incident")).click();
  const address = await browser.$("#incident-address");
  await address.waitForDisplayed({ timeout: 10_000 });
  await address.setValue("Avinguda Meritxell");
  await (await browser.$("#incident-type")).selectByAttribute("value", "traffic_accident").catch(async () => {
    // Whatever the type list holds, pick its second entry (the first is the default).
    await (await browser.$("#incident-type")).selectByIndex(1);
  });
  await (await browser.$("#incident-description")).setValue(description);
  const typeChosen = await (await browser.$("#incident-type")).getValue();
  await (await browser.$("#incident-submit")).click();

  // The detail panel opens on the new incident.
  let id = null;
  await browser.waitUntil(
    async () => {
      id = await browser.execute(() => document.querySelector("#incident-detail")?.getAttribute("data-incident-id-detail") ?? null);
      return Boolean(id);
    },
    { timeout: 30_000, interval: 250, timeoutMsg: "no incident detail panel after #incident-submit" },
  );
  const row = await browser.$(`[data-incident-id="${id}"]`);
  await row.waitForExist({ timeout: 10_000, timeoutMsg: `incident ${id} is not in the queue` });
  const detailText = await (await browser.$("#incident-detail")).getText();
  if (!detailText.includes(description)) fail(`the detail panel of ${id} does not show the description "${description}"`);
  const kinds = await timelineOf(browser, id);
  if (!kinds.includes("created")) fail(`timeline of ${id} lacks its "created" entry: ${kinds.join(", ")}`);
  log(`created incident ${id} (${typeChosen}); timeline: ${kinds.join(", ")}`);

  const violations = await browser.execute(() => window.__cspViolations);
  if (violations.length) fail(`Content-Security-Policy violations: ${violations.join("; ")}`);

  // Let the map settle on the incident for the screenshot.
  await browser.pause(1500);
  mkdirSync(OUT, { recursive: true });
  await browser.saveScreenshot(path.join(OUT, "console.png"));
  log(`screenshot: ${path.relative(ROOT, path.join(OUT, "console.png"))}`);

  await dispatchIntelligence(browser, id);
  await mapSearch(browser);
  await facilityImport(browser, dataDir);
  const after = await browser.execute(() => window.__cspViolations);
  if (after.length) fail(`Content-Security-Policy violations: ${after.join("; ")}`);
  await lockAndUnlock(browser);
  return { id, description, kinds, secret };
}

async function secondRun(browser, first) {
  await signInAgain(browser, first.secret);
  await waitReady(browser);
  log("relaunched; map ready");
  const row = await browser.$(`[data-incident-id="${first.id}"]`);
  await row.waitForExist({ timeout: 20_000, timeoutMsg: `after relaunch, incident ${first.id} is not in the queue` });
  // The replay may insert an incident above the row between finding it and clicking it (the
  // click then opens the newcomer): click again until the panel shows ours.
  for (let attempt = 1; ; attempt++) {
    await (await browser.$(`[data-incident-id="${first.id}"]`)).click();
    const shown = await browser
      .waitUntil(() => browser.execute((want) => document.querySelector("#incident-detail")?.getAttribute("data-incident-id-detail") === want, first.id), {
        timeout: 5_000,
        interval: 250,
      })
      .then(() => true, () => false);
    if (shown) break;
    if (attempt === 3) fail(`after relaunch, clicking the row of ${first.id} three times did not open its detail panel`);
  }
  const kinds = await timelineOf(browser, first.id, first.kinds.length);
  for (const k of first.kinds) {
    if (!kinds.includes(k)) fail(`after relaunch, the timeline of ${first.id} lacks "${k}": ${kinds.join(", ")}`);
  }
  const detailText = await (await browser.$("#incident-detail")).getText();
  if (!detailText.includes(first.description)) fail(`after relaunch, the description of ${first.id} is gone`);
  log(`after relaunch: incident ${first.id} with timeline ${kinds.join(", ")}`);
}

async function main() {
  if (!existsSync(BIN)) fail(`no app binary at ${BIN}: build it with cargo build -p outpost --features custom-protocol`);
  const roster = readRoster();
  const pack = demoPack();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "outpost-e2e-"));
  copyFileSync(pack, path.join(dataDir, DEMO_PACK));
  // The default idle lock (15 min) must not strike during the first run's steps.
  const args = ["--demo", "--data-dir", dataDir, "--user", "e2e", "--idle-lock-min", "30"];
  log(`app: ${BIN} ${args.join(" ")}`);

  const driver = new Driver();
  let browser = null;
  let server = null;
  const temps = [dataDir];
  try {
    await driver.start();
    if (process.env.E2E_DOCS_SHOT_SIGNIN) await docsShotsSignin(driver, pack, temps);
    // E2E_ONLY=server runs only the sync-server part (step 6); E2E_ONLY=signin only the above.
    if (process.env.E2E_ONLY !== "server" && process.env.E2E_ONLY !== "signin") {
      browser = await driver.session(args);
      const first = await firstRun(browser, roster, dataDir);
      await browser.deleteSession();
      browser = null;
      log("quit; relaunching on the same data directory");

      const docs = process.env.E2E_DOCS_SHOT_ZH || process.env.E2E_DOCS_SHOT;
      // Without README shots to take, the relaunch checks the idle lock at one minute.
      browser = await driver.session(docs ? args : [...args.slice(0, -1), "1"]);
      await secondRun(browser, first);
      await browser.saveScreenshot(path.join(OUT, "console-relaunched.png"));
      if (!docs) await idleLock(browser);
      if (process.env.E2E_DOCS_SHOT_ZH) await docsShotsZh(browser, first.id, roster);
      if (process.env.E2E_DOCS_SHOT) {
        // For the README: let the replay run a while (units moving, incidents dispatched).
        await browser.pause(Number(process.env.E2E_DOCS_SHOT_WAIT_S ?? 60) * 1000);
        // Open the top of the queue (highest priority, usually a dispatched demo incident).
        const top = await browser.$("[data-incident-id]");
        if (await top.isExisting()) {
          await top.click();
          await browser.pause(1500);
        }
        mkdirSync(path.join(ROOT, "docs"), { recursive: true });
        await browser.saveScreenshot(path.join(ROOT, "docs/screenshot.png"));
        log("README screenshot: docs/screenshot.png");
      }
      await browser.deleteSession();
      browser = null;

    }

    if (!process.env.E2E_NO_SERVER && process.env.E2E_ONLY !== "signin") {
      SERVER_BIN = serverBinary();
      const serverDir = mkdtempSync(path.join(os.tmpdir(), "outpost-e2e-server-"));
      const consoleDir = mkdtempSync(path.join(os.tmpdir(), "outpost-e2e-online-"));
      temps.push(serverDir, consoleDir);
      server = await startServer(serverDir);
      log(`sync server at ${server.url}`);
      browser = await driver.session([
        "--pack", pack, "--data-dir", consoleDir, "--server", server.url, "--ca", server.ca, "--user", server.user, "--idle-lock-min", "0",
      ]);
      await serverRun(browser, server);
      await browser.deleteSession();
      browser = null;
    }
  } catch (e) {
    if (browser) {
      mkdirSync(OUT, { recursive: true });
      await browser.saveScreenshot(path.join(OUT, "failure.png")).catch(() => {});
      log(`failure screenshot: ${path.relative(ROOT, path.join(OUT, "failure.png"))}`);
      await browser.deleteSession().catch(() => {});
    }
    throw e;
  } finally {
    await driver.stop();
    await server?.stop();
    if (process.env.E2E_KEEP) log(`kept data directories ${temps.join(", ")}`);
    else for (const d of temps) rmSync(d, { recursive: true, force: true });
  }
  log("PASS");
}

main().catch((e) => {
  console.error(`[e2e] FAIL: ${e.message}`);
  process.exit(1);
});
