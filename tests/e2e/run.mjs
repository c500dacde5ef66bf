// End-to-end test of the real Outpost app: tauri-driver + WebKitWebDriver drive the release
// or debug binary (built with the `custom-protocol` feature, so the UI comes from the bundle)
// on the demo area with a temporary data directory.
//
//   1. launch `outpost --demo --data-dir TMP`; wait for window.__outpost.ready (map drawn);
//   2. the map's `units` layer has as many features as demo/andorra-roster.json has units;
//   3. create an incident through the UI (#new-incident, #incident-*), see it in the queue
//      and its timeline in the detail panel; save tests/e2e/out/console.png;
//   4. quit, relaunch on the same data directory: the incident and its timeline are there.
//
// Run under a display and a session bus, as scripts/test does:
//   OUTPOST_BIN=target/debug/outpost dbus-run-session -- xvfb-run -a -s '-screen 0 1600x1000x24 -noreset' node tests/e2e/run.mjs
// Environment: OUTPOST_BIN (default target/debug/outpost), E2E_KEEP=1 keeps the temp dir,
// E2E_TIMEOUT_S (default 180) bounds each wait for the map, E2E_DOCS_SHOT=1 also saves
// docs/screenshot.png after E2E_DOCS_SHOT_WAIT_S (default 60) seconds of replay.

import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { BIN, DEMO_PACK, Driver, OUT, ROOT, ROSTER, demoPack, fail, log, waitReady } from "./driver.mjs";

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

async function firstRun(browser, roster) {
  const expectedUnits = roster.units;
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
  return { id, description, kinds };
}

async function secondRun(browser, first) {
  await waitReady(browser);
  log("relaunched; map ready");
  const row = await browser.$(`[data-incident-id="${first.id}"]`);
  await row.waitForExist({ timeout: 20_000, timeoutMsg: `after relaunch, incident ${first.id} is not in the queue` });
  await row.click();
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
  const args = ["--demo", "--data-dir", dataDir, "--user", "e2e"];
  log(`app: ${BIN} ${args.join(" ")}`);

  const driver = new Driver();
  let browser = null;
  try {
    await driver.start();
    browser = await driver.session(args);
    const first = await firstRun(browser, roster);
    await browser.deleteSession();
    browser = null;
    log("quit; relaunching on the same data directory");

    browser = await driver.session(args);
    await secondRun(browser, first);
    await browser.saveScreenshot(path.join(OUT, "console-relaunched.png"));
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
    if (process.env.E2E_KEEP) log(`kept data directory ${dataDir}`);
    else rmSync(dataDir, { recursive: true, force: true });
  }
  log("PASS");
}

main().catch((e) => {
  console.error(`[e2e] FAIL: ${e.message}`);
  process.exit(1);
});
