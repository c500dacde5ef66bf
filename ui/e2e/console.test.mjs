// The console in headless Chromium (Debian's /usr/bin/chromium through playwright-core) with
// the Tauri IPC mocked by the in-memory backend (src/mock, bundled by vite.mock.config.ts).
// Run with `npm run test:e2e` (builds ui/dist and the mock first). Tiles 404: there is no pack.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "./serve.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const ui = join(here, "..");
const outDir = join(ui, "test-results");
// Debian's chromium; `CHROMIUM=/path` overrides. playwright-core downloads no browser.
const CHROMIUM =
  process.env.CHROMIUM ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p)) ?? "/usr/bin/chromium";

/**
 * The desktop app's Content-Security-Policy (src-tauri/tauri.conf.json, owned by the shell),
 * so a violation shows up here rather than only in the real app. The IPC and tile-protocol
 * sources are the shell's; in this test tiles come from the page's own origin ('self').
 */
async function appCsp() {
  try {
    const conf = JSON.parse(await readFile(join(ui, "..", "src-tauri", "tauri.conf.json"), "utf8"));
    const csp = conf?.app?.security?.csp;
    if (!csp) return null;
    return typeof csp === "string" ? csp : Object.entries(csp).map(([k, v]) => `${k} ${v}`).join("; ");
  } catch {
    return null;
  }
}

let server;
let csp;
let browser;
let mockScript;

before(async () => {
  mockScript = await readFile(join(here, ".build", "mock-backend.js"), "utf8");
  csp = await appCsp();
  server = await serve(join(ui, "dist"), csp ? { "content-security-policy": csp } : {});
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--enable-unsafe-swiftshader",
    ],
  });
  await mkdir(outDir, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** A page with the fake backend installed before the app runs; records every request. */
async function openConsole(options = {}, { clock = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, locale: "zh-CN" });
  const page = await context.newPage();
  // Fake timers (the idle lock): installed before the app's code runs.
  if (clock) await page.clock.install();
  const requests = [];
  const consoleErrors = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.on("console", (m) => {
    // CSP violations are reported on the console only.
    if (/Content Security Policy/i.test(m.text())) consoleErrors.push(m.text());
  });
  // Init scripts are not subject to the page's CSP (no eval needed).
  await page.addInitScript({
    content: `window.__OUTPOST_MOCK_OPTIONS__ = Object.assign({ mapBaseUrl: location.origin + "/no-pack" }, ${JSON.stringify(options)});\n${mockScript}`,
  });
  await page.goto(`${server.origin}/index.html`);
  return { context, page, requests, consoleErrors };
}

async function waitReady(page) {
  await page.waitForFunction(() => window.__outpost?.ready === true, null, { timeout: 30_000 });
}

test("the map draws one feature per unit and nothing leaves the machine", async () => {
  const { context, page, requests, consoleErrors } = await openConsole();
  try {
    await waitReady(page);
    const { drawn, expected, layers } = await page.evaluate(() => {
      const map = window.__outpost.map;
      const feats = map.queryRenderedFeatures({ layers: ["units"] });
      return {
        drawn: [...new Set(feats.map((f) => f.properties.id))].sort(),
        expected: window.__outpostMock.units.filter((u) => u.fix).map((u) => u.id).sort(),
        layers: ["units", "incidents", "facilities"].map((l) => Boolean(map.getLayer(l))),
      };
    });
    assert.equal(expected.length, 6);
    assert.deepEqual(drawn, expected);
    assert.deepEqual(layers, [true, true, true]);
    // Facilities and incidents render too (4 facilities, 3 open incidents in the fake).
    const counts = await page.evaluate(() => {
      const map = window.__outpost.map;
      const ids = (l) => new Set(map.queryRenderedFeatures({ layers: [l] }).map((f) => f.properties.id)).size;
      return { incidents: ids("incidents"), facilities: ids("facilities") };
    });
    assert.equal(counts.incidents, 3);
    assert.equal(counts.facilities, 4);
    // Demo banner, attribution, the board and the queue.
    assert.match(await page.locator("#demo-banner").innerText(), /DEMO/);
    assert.match(await page.locator(".maplibregl-ctrl-attrib").innerText(), /© OpenStreetMap contributors/);
    assert.equal(await page.locator("[data-unit-id]").count(), 6);
    assert.equal(await page.locator("[data-incident-id]").count(), 3);
    // Every request stayed on the local server (tiles, glyphs, sprites, worker).
    const foreign = requests.filter((u) => !u.startsWith(server.origin) && !u.startsWith("data:") && !u.startsWith("blob:"));
    assert.deepEqual(foreign, []);
    assert.ok(requests.some((u) => u.includes("/map/sprites/maki")), "sprite requested from the bundle");
    assert.ok(requests.some((u) => u.includes("/no-pack/tiles/")), "tiles requested from map_base_url");
    assert.deepEqual(consoleErrors, []);
    // The production bundle does not carry the fake backend.
    const scripts = requests.filter((u) => /\/assets\/.*\.m?js$/.test(u));
    assert.ok(scripts.length >= 1);
    for (const u of scripts) assert.doesNotMatch(await (await fetch(u)).text(), /forceUnitStatus|MockBackend/);
    if (csp) assert.match(csp, /default-src/); // served with the app's CSP
    await page.screenshot({ path: join(outDir, "console.png") });
  } finally {
    await context.close();
  }
});

test("creating an incident through the form adds a queue row and opens its detail", async () => {
  const { context, page } = await openConsole();
  try {
    await waitReady(page);
    const before = await page.locator("[data-incident-id]").count();
    await page.click("#new-incident");
    await page.fill("#incident-address", "Meritxell");
    // Pick the offline search hit: it sets the location and the address.
    await page.locator("[data-search-hit='0']").click();
    assert.equal(await page.inputValue("#incident-address"), "Avinguda Meritxell, Andorra la Vella");
    await page.selectOption("#incident-type", "fire");
    await page.fill("#incident-description", "Smoke on the third floor");
    await page.click("#incident-submit");

    const detail = page.locator("#incident-detail");
    await detail.waitFor();
    await page.waitForFunction((n) => document.querySelectorAll("[data-incident-id]").length === n, before + 1);
    const newId = await detail.getAttribute("data-incident-id-detail");
    assert.ok(newId);
    assert.equal(await page.locator(`[data-incident-id="${newId}"]`).count(), 1);
    const entries = detail.locator("[data-timeline-entry]");
    assert.ok((await entries.count()) >= 1);
    const first = await entries.first().innerText();
    // Local time with the date, the user, and what happened.
    assert.match(first, /\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}/);
    assert.match(first, /dispatcher/);
    assert.match(first, /火警/);
    assert.match(await detail.innerText(), /Smoke on the third floor/);
    // A fire defaults to P1 and draws the eye until acknowledged.
    assert.equal(await page.locator(`[data-incident-id="${newId}"].unack-p1`).count(), 1);

    // Keyboard: A acknowledges the open incident; the row stops flashing.
    await page.locator("body").click({ position: { x: 5, y: 5 } }).catch(() => {});
    await page.keyboard.press("a");
    await page.waitForSelector(`[data-incident-id="${newId}"]:not(.unack-p1)`);
    // Assign the nearest available unit, then see it in the detail and the timeline.
    await page.selectOption("#assign-unit", { index: 1 });
    await page.click("#assign-submit");
    await page.waitForSelector("#incident-detail [data-timeline-entry='unit_assigned']");
    // Notes go into the timeline too.
    await page.fill("#incident-note", "Caller on the line");
    await page.click("#note-submit");
    await page.waitForSelector("#incident-detail [data-timeline-entry='note']");
    // The new incident is on the map.
    await page.waitForFunction(
      (id) => window.__outpost.map.querySourceFeatures("incidents").some((f) => f.properties.id === id),
      newId,
    );
    // "/" focuses the search; Enter picks the first offline hit and starts an incident there.
    await page.keyboard.press("Escape");
    await page.waitForSelector("#incident-detail", { state: "detached" });
    await page.keyboard.press("/");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "place-search");
    await page.keyboard.type("Unió");
    await page.waitForSelector("[data-search-hit='0']");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#new-incident-form");
    assert.equal(await page.inputValue("#incident-address"), "Carrer de la Unió, Andorra la Vella");
    assert.match(await page.locator("[data-form-location]").innerText(), /42\.50680, 1\.52260/);
    await page.keyboard.press("Escape");
    await page.waitForSelector("#new-incident-form", { state: "detached" });
    await page.click(`[data-incident-id="${newId}"]`);
    await detail.waitFor();

    // Esc closes the panel; N opens a new form.
    await page.keyboard.press("Escape");
    await page.waitForSelector("#incident-detail", { state: "detached" });
    await page.keyboard.press("n");
    await page.waitForSelector("#new-incident-form");
    await page.screenshot({ path: join(outDir, "new-incident.png") });
  } finally {
    await context.close();
  }
});

test("an illegal status change is refused with a message", async () => {
  const { context, page } = await openConsole();
  try {
    await waitReady(page);
    await page.click("[data-unit-id='u-01'] .callsign");
    await page.waitForSelector("#unit-card [data-status-to='busy']");
    // Another console took the unit out of service; this one has not refreshed yet.
    await page.evaluate(() => window.__outpostMock.forceUnitStatus("u-01", "out_of_service"));
    await page.click("#unit-card [data-status-to='busy']");
    const err = page.locator("#action-error");
    await err.waitFor();
    assert.match(await err.innerText(), /cannot become busy/);
    // The refresh after the refusal shows the real status.
    await page.waitForSelector("#unit-card [data-unit-status='out_of_service']");
    // A legal change goes through and clears the message.
    await page.click("#unit-card [data-status-to='available']");
    await page.waitForSelector("#unit-card [data-unit-status='available']");
    assert.equal(await err.count(), 0);
  } finally {
    await context.close();
  }
});

test("map clicks open cards, right-click starts an incident at a described address", async () => {
  const { context, page } = await openConsole();
  try {
    await waitReady(page);
    // Where a WGS-84 point is on the page now (the map resizes when a side panel opens).
    const pagePoint = async (lon, lat) => {
      await page.waitForTimeout(300);
      const box = await page.locator(".map").boundingBox();
      const p = await page.evaluate(([x, y]) => window.__outpost.map.project([x, y]), [lon, lat]);
      return { x: box.x + p.x, y: box.y + p.y };
    };
    const unit = await page.evaluate(() => window.__outpostMock.units.find((x) => x.id === "u-01").fix.position);
    let p = await pagePoint(unit.lon, unit.lat);
    await page.mouse.click(p.x, p.y);
    await page.waitForSelector("#unit-card[data-unit-id='u-01']");
    // The side panel narrowed the map; bring the station into view first.
    const fac = await page.evaluate(() => {
      const f = window.__outpostMock.facilities.find((x) => x.id === "stn-east").position;
      window.__outpost.map.jumpTo({ center: [f.lon + 0.002, f.lat] });
      return f;
    });
    p = await pagePoint(fac.lon, fac.lat);
    await page.mouse.click(p.x, p.y);
    await page.waitForSelector("#facility-card");
    assert.match(await page.locator("#facility-card").innerText(), /东区派出所/);

    // Right-click near Carrer de la Unió: the form opens with the described address.
    await page.evaluate(() => window.__outpost.map.jumpTo({ center: [1.5226, 42.5068] }));
    p = await pagePoint(1.5226, 42.5068);
    await page.mouse.click(p.x, p.y, { button: "right" });
    await page.waitForSelector("#new-incident-form");
    await page.waitForFunction(() => document.querySelector("#incident-address")?.value === "Carrer de la Unió, Andorra la Vella");
    assert.match(await page.locator("[data-form-location]").innerText(), /42\.50\d+, 1\.52\d+/);
  } finally {
    await context.close();
  }
});

test("settings switch language and theme, and the map redraws every unit", async () => {
  const { context, page } = await openConsole({ settings: { language: "zh_cn", theme: "day" } });
  try {
    await waitReady(page);
    assert.equal(await page.locator("html").getAttribute("data-theme"), "day");
    await page.click("#open-settings");
    await page.selectOption("#settings-language", "en");
    await page.selectOption("#settings-theme", "night");
    await page.fill("#settings-stale", "600");
    // The server URL is checked as typed: a path after the port is refused, empty means alone.
    await page.fill("#settings-server-url", "http://10.20.0.5:8443/v1");
    assert.equal(await page.locator("#settings-save").isDisabled(), true);
    assert.equal(await page.locator("#settings-server-url-help").getAttribute("data-invalid"), "true");
    await page.fill("#settings-server-url", "");
    assert.equal(await page.locator("#settings-save").isDisabled(), false);
    await page.click("#settings-save");
    await page.waitForSelector("#settings-panel", { state: "detached" });
    assert.equal(await page.locator("html").getAttribute("data-theme"), "night");
    assert.match(await page.locator("#queue-title").innerText(), /Incidents/);
    assert.deepEqual(await page.evaluate(() => window.__outpostMock.settings), {
      language: "en",
      theme: "night",
      stale_after_s: 600,
      server_url: null,
    });
    await page.waitForSelector("#sync-indicator[data-sync-state='disabled']");
    assert.equal(await page.locator("#sync-indicator [data-sync-text]").innerText(), "Working alone");
    // The rebuilt style still draws all six units; with a 600 s threshold none is stale.
    await page.waitForFunction(() => {
      const map = window.__outpost.map;
      if (!map.getLayer("units")) return false;
      const f = map.queryRenderedFeatures({ layers: ["units"] });
      return new Set(f.map((x) => x.properties.id)).size === 6 && f.every((x) => x.properties.stale === false);
    });
    assert.equal(await page.locator("[data-stale]").count(), 0);
    await page.screenshot({ path: join(outDir, "night-en.png") });
  } finally {
    await context.close();
  }
});

test("the sync indicator goes offline → syncing → online, and the sync panel resolves a conflict", async () => {
  const { context, page, consoleErrors } = await openConsole({ sync: { offlineMs: 6000, syncingMs: 3000, offlineSinceAgoS: 420 } });
  try {
    const indicator = page.locator("#sync-indicator");
    // Offline for 7 minutes: red, with the time the link was lost, the outbox per lane and the conflicts.
    await page.waitForSelector("#sync-indicator[data-sync-state='offline']");
    assert.equal(await indicator.getAttribute("data-tone"), "offline-red");
    assert.match(await indicator.locator("[data-sync-text]").innerText(), /^离线 自 \d{2}:\d{2}$/);
    assert.equal(await indicator.locator("[data-sync-lanes]").innerText(), "紧急 4 · 备注 2 · 位置 180");
    assert.match(await indicator.locator("[data-sync-last]").innerText(), /^上次同步 \d{2}:\d{2}$/);
    assert.equal(await page.locator("#conflict-badge").innerText(), "冲突 3");
    assert.equal(await page.locator("#parked-badge").innerText(), "需处理 2");
    await page.locator(".topbar").screenshot({ path: join(outDir, "sync-offline-topbar.png") });
    // The link comes back: syncing with what is left to send, then online.
    await page.waitForSelector("#sync-indicator[data-sync-state='syncing']", { timeout: 15_000 });
    assert.match(await indicator.locator("[data-sync-text]").innerText(), /^同步中/);
    await page.waitForSelector("#sync-indicator[data-sync-state='online']", { timeout: 15_000 });
    assert.equal(await indicator.locator("[data-sync-text]").innerText(), "在线");
    assert.equal(await indicator.locator("[data-sync-lanes]").count(), 0);
    await page.locator(".topbar").screenshot({ path: join(outDir, "sync-online-topbar.png") });

    // The panel: one conflict of each kind, both sides with who and when, the shown side marked.
    await indicator.click();
    const panel = page.locator("#sync-panel");
    await panel.waitFor();
    assert.equal(await panel.locator("[data-sync-summary='online']").count(), 1);
    assert.deepEqual(
      await panel.locator("[data-conflict-id]").evaluateAll((els) => els.map((e) => e.getAttribute("data-conflict-kind"))),
      ["field", "double_assignment", "edit_after_close"],
    );
    const field = panel.locator("[data-conflict-kind='field']");
    assert.match(await field.innerText(), /修改冲突/);
    assert.deepEqual(await field.locator("[data-side-value]").allInnerTexts(), ["P2 急", "P1 紧急"]);
    assert.equal(await field.locator("[data-shown='true'] [data-side-value]").innerText(), "P1 紧急");
    assert.match(await field.locator("[data-conflict-side='op-remote-prio']").innerText(), /王建国，\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}/);
    assert.match(await panel.locator("[data-conflict-kind='edit_after_close'] [data-shown='true']").innerText(), /结案：已登记/);
    assert.deepEqual(await panel.locator("[data-conflict-kind='double_assignment'] [data-side-value]").allInnerTexts(), [
      "巡03 派往 #2026-0002 火警",
      "巡03 派往 #2026-0001 交通事故",
    ]);
    assert.equal(await panel.locator("#parked-ops [data-parked-op]").count(), 2);
    assert.match(await panel.locator("[data-parked-op='op-parked-1'] [data-parked-reason]").innerText(), /server does not have/);
    await page.screenshot({ path: join(outDir, "sync-panel.png") });

    // Keep the other console's P2: the conflict goes, the badge counts down, the queue shows P2.
    const fireId = await page.evaluate(() => window.__outpostMock.conflictList[0].incident_id);
    assert.equal(await page.locator(`[data-incident-id="${fireId}"] [data-conflict-mark]`).innerText(), "冲突");
    assert.equal(await page.locator("[data-unit-id='u-03'] [data-conflict-mark]").count(), 1);
    await field.locator("[data-keep-op='op-remote-prio']").click();
    await page.waitForFunction(() => document.querySelectorAll("#sync-panel [data-conflict-id]").length === 2);
    await page.waitForFunction(() => document.querySelector("#conflict-badge")?.textContent === "冲突 2");
    await page.waitForFunction((id) => document.querySelector(`[data-incident-id="${id}"] .prio-badge`)?.textContent === "P2", fireId);
    assert.equal(await page.locator(`[data-incident-id="${fireId}"] [data-conflict-mark]`).count(), 0);
    // Keep the closing: a conflict.resolve with the reason lands in the incident's timeline.
    const late = panel.locator("[data-conflict-kind='edit_after_close']");
    await late.locator("input.conflict-note").fill("已电话核实");
    await late.locator("[data-keep-op='op-local-close']").click();
    await page.waitForFunction(() => document.querySelectorAll("#sync-panel [data-conflict-id]").length === 1);
    const theftId = await page.evaluate(() => [...window.__outpostMock.incidents.values()].find((r) => r.detail.summary.status === "closed").detail.summary.id);
    const resolved = await page.evaluate((id) => window.__outpostMock.detail(id).timeline.at(-1).event, theftId);
    assert.equal(resolved.kind, "conflict_resolved");
    assert.equal(resolved.note, "已电话核实");
    // The double assignment's incident link opens it.
    await panel.locator("[data-conflict-kind='double_assignment'] button.link").click();
    await page.waitForSelector("#unit-card[data-unit-id='u-03']");
    assert.deepEqual(consoleErrors, []);
  } finally {
    await context.close();
  }
});

test("a broken pack opens the error screen naming the file, the problem and the hint", async () => {
  const { context, page } = await openConsole({ packError: true });
  try {
    const screen = page.locator("#pack-error");
    await screen.waitFor();
    assert.match(await page.locator("[data-pack-path]").innerText(), /dongsheng\.outpost$/);
    assert.match(await page.locator("[data-pack-problem]").innerText(), /metadata table is missing/);
    assert.match(await page.locator("[data-pack-hint]").innerText(), /outpost-server pack build/);
    await page.screenshot({ path: join(outDir, "pack-error.png") });
  } finally {
    await context.close();
  }
});

test("the devices panel lists unbound devices with their fix age and binds and unbinds them", async () => {
  const { context, page, consoleErrors } = await openConsole();
  try {
    await waitReady(page);
    // Three devices report but are bound to no unit: counted in the top bar.
    await page.waitForSelector("#unbound-badge");
    assert.equal(await page.locator("#unbound-badge").innerText(), "3");
    assert.equal(await page.locator("#unbound-badge").getAttribute("aria-label"), "3 个待绑定");
    await page.click("#open-devices");
    const panel = page.locator("#devices-panel");
    await panel.waitFor();
    // Unbound first, newest report first; then the bound ones with their unit.
    assert.deepEqual(
      await panel.locator("#unbound-devices [data-device-id]").evaluateAll((els) => els.map((e) => e.getAttribute("data-device-id"))),
      ["862104050123456", "ANDROID-5f3c9a1e2b7d4c60", "S-LAPTOP-07"],
    );
    const phone = panel.locator("[data-device-id='862104050123456']");
    assert.match(await phone.innerText(), /OsmAnd \/ Traccar/);
    assert.match(await phone.locator("[data-device-fix]").innerText(), /42\.50920, 1\.52310/);
    assert.match(await phone.locator("[data-fix-age]").innerText(), /^\d+ 秒$/);
    assert.equal(await phone.locator("[data-fix-age]").getAttribute("data-age-tone"), "fresh");
    assert.equal(await phone.locator("[data-battery]").innerText(), "电量 76%");
    assert.equal(await phone.locator("[data-device-reports]").innerText(), "42");
    // The TAK tablet's fix is past half the 120 s threshold; the laptop's is 40 min old.
    assert.equal(await panel.locator("[data-device-id='ANDROID-5f3c9a1e2b7d4c60'] [data-fix-age]").getAttribute("data-age-tone"), "stale");
    const laptop = panel.locator("[data-device-id='S-LAPTOP-07']");
    assert.equal(await laptop.locator("[data-fix-age]").innerText(), "40 分钟");
    assert.equal(await laptop.locator("[data-fix-age][data-stale]").count(), 1);
    assert.equal(await laptop.locator(".battery-low").count(), 1);
    assert.match(await panel.locator("[data-device-id='ANDROID-5f3c9a1e2b7d4c60']").innerText(), /VIPER 2-1/);
    assert.deepEqual(
      await panel.locator("#bound-devices [data-device-id]").evaluateAll((els) => els.map((e) => e.getAttribute("data-bound-unit"))),
      ["u-01", "u-02"],
    );
    // "Show on map" drops a pin on the device's last fix.
    await phone.locator("[data-device-fix] button.link").click();
    await page.waitForSelector(".maplibregl-marker");
    await page.screenshot({ path: join(outDir, "devices-panel.png") });

    // Bind the phone to 摩01: it leaves the unbound list, joins the bound one, the count drops.
    await phone.locator("select").selectOption("u-04");
    await phone.locator("[data-bind]").click();
    await page.waitForSelector("#bound-devices [data-device-id='862104050123456'][data-bound-unit='u-04']");
    assert.equal(await panel.locator("#unbound-devices [data-device-id]").count(), 2);
    await page.waitForFunction(() => document.querySelector("#unbound-badge")?.textContent === "2");
    assert.match(await panel.locator("#bound-devices [data-device-id='862104050123456']").innerText(), /摩01/);
    assert.deepEqual(
      await page.evaluate(() => window.__outpostMock.devices.find((d) => d.device_id === "862104050123456")),
      { device_id: "862104050123456", source: "osmand", name: null, unit_id: "u-04", callsign: "摩01", last_fix: await page.evaluate(() => window.__outpostMock.devices.find((d) => d.device_id === "862104050123456").last_fix), reports: 42, battery_pct: 76 },
    );
    // Unbind 巡01's phone: it is listed for binding again.
    await panel.locator("[data-unbind='861234567890123']").click();
    await page.waitForSelector("#unbound-devices [data-device-id='861234567890123']");
    await page.waitForFunction(() => document.querySelector("#unbound-badge")?.textContent === "3");
    assert.equal(await page.evaluate(() => window.__outpostMock.devices.find((d) => d.device_id === "861234567890123").unit_id), null);
    assert.deepEqual(consoleErrors, []);
  } finally {
    await context.close();
  }
});

test("track playback: slider, play at 60×, follow, the line on the map, GPX and KML export", async () => {
  const { context, page, consoleErrors } = await openConsole();
  try {
    await waitReady(page);
    // From the unit card: 巡01's last hour.
    await page.click("[data-unit-id='u-01'] .callsign");
    await page.click("#unit-track");
    const panel = page.locator("#playback-panel");
    await panel.waitFor();
    assert.equal(await page.inputValue("#track-unit"), "u-01");
    await page.waitForSelector("#track-summary");
    const n = Number(await page.locator("#track-summary").getAttribute("data-track-points"));
    // One fix every 10 s: 360 in an hour, give or take the seconds the page took to open.
    assert.ok(n >= 355 && n <= 361, `fixes in the last hour: ${n}`);
    // The line on the map has every fix, in order, the last one the unit's latest position.
    const line = await page.evaluate(async () => {
      const map = window.__outpost.map;
      const data = await map.getSource("track").getData();
      return data.features[0].geometry.coordinates;
    });
    assert.equal(line.length, n);
    const { hist, latest } = await page.evaluate(() => ({
      hist: window.__outpostMock.history.get("u-01").map((f) => [f.position.lon, f.position.lat]),
      latest: window.__outpostMock.units.find((u) => u.id === "u-01").fix.position,
    }));
    assert.deepEqual(line, hist.slice(hist.length - n));
    assert.deepEqual(line.at(-1), [latest.lon, latest.lat]);
    assert.equal(await page.evaluate(() => Boolean(window.__outpost.map.getLayer("track-line"))), true);

    const head = () =>
      page.evaluate(async () => (await window.__outpost.map.getSource("track-head").getData()).features[0]?.geometry.coordinates);
    const centre = () => page.evaluate(() => window.__outpost.map.getCenter().toArray());
    // The slider starts at the first fix; End takes it to the last, which is the unit's position.
    assert.deepEqual(await head(), line[0]);
    await page.focus("#track-slider");
    await page.keyboard.press("End");
    await page.waitForFunction((want) => document.querySelector("#track-fix")?.getAttribute("data-fix-time") === want, await page.evaluate(() => window.__outpostMock.units.find((u) => u.id === "u-01").fix.fix_time));
    await page.waitForFunction(
      async ([lon, lat]) => {
        const d = await window.__outpost.map.getSource("track-head").getData();
        const c = d.features[0]?.geometry.coordinates;
        return c && Math.abs(c[0] - lon) < 1e-9 && Math.abs(c[1] - lat) < 1e-9;
      },
      [latest.lon, latest.lat],
    );
    // Following: the map is centred on the playhead.
    const [clon, clat] = await centre();
    assert.ok(Math.abs(clon - latest.lon) < 1e-6 && Math.abs(clat - latest.lat) < 1e-6, `centre ${clon},${clat}`);
    // The fix shown carries its age (a few seconds: it is the latest fix).
    assert.match(await panel.locator("#track-fix [data-fix-age]").innerText(), /^\d+ 秒$/);

    // Back to the start, 60×, play for ~1.5 s: the playhead moves about 90 s of track.
    await page.keyboard.press("Home");
    const t0 = Date.parse(await page.locator("#track-playhead").getAttribute("data-playhead"));
    await page.click("[data-speed='60']");
    const wallStart = Date.now();
    await page.click("#track-play");
    await page.waitForSelector("#playback-panel[data-playing='true']");
    await page.waitForTimeout(1500);
    await page.click("#track-play");
    await page.waitForSelector("#playback-panel[data-playing='false']");
    const wall = (Date.now() - wallStart) / 1000;
    const t1 = Date.parse(await page.locator("#track-playhead").getAttribute("data-playhead"));
    const moved = (t1 - t0) / 1000;
    // 60 track seconds per real second, for at most the time between the two clicks.
    assert.ok(moved >= 60 && moved <= 60 * wall + 1, `60× for ${wall} s moved the playhead ${moved} s`);
    // The playhead is between the fixes around it, and the map followed it.
    const h = await head();
    const [c2lon, c2lat] = await centre();
    assert.ok(Math.abs(c2lon - h[0]) < 1e-6 && Math.abs(c2lat - h[1]) < 1e-6);
    await page.screenshot({ path: join(outDir, "playback.png") });

    // Exports of the same window: the written file's path and the number of fixes.
    await page.click("[data-export='gpx']");
    await page.waitForSelector("#track-export-result");
    const gpx = await page.locator("#track-export-result").getAttribute("data-export-path");
    assert.match(gpx, /^\/home\/duty\/\.local\/share\/outpost\/exports\/巡01-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.gpx$/);
    assert.match(await page.locator("#track-export-result").innerText(), new RegExp(`已写入 ${n} 个定位点`));
    await page.click("[data-export='kml']");
    await page.waitForFunction(() => document.querySelector("#track-export-result")?.getAttribute("data-export-path")?.endsWith(".kml"));
    await page.locator("#playback-panel").screenshot({ path: join(outDir, "playback-export.png") });
    assert.deepEqual(
      await page.evaluate(() => window.__outpostMock.exports.map((e) => [e.path.split(".").at(-1), e.points])),
      [
        ["gpx", n],
        ["kml", n],
      ],
    );
    // A custom window with no fixes says so.
    await page.selectOption("#track-window", "custom");
    await page.fill("#track-from", "2020-01-01T08:00");
    await page.fill("#track-to", "2020-01-01T09:00");
    await page.click("#track-load");
    await page.waitForSelector("#track-empty");
    assert.match(await page.locator("#track-empty").innerText(), /巡01 在此时间范围内没有定位/);
    // Closing the panel takes the track off the map.
    await panel.locator(".panel-head button.icon-button").click();
    await page.waitForFunction(async () => (await window.__outpost.map.getSource("track").getData()).features.length === 0);
    assert.deepEqual(consoleErrors, []);
  } finally {
    await context.close();
  }
});

test("the field laptop: its assignment, the big status buttons, notes, the GPS line, centred on itself", async () => {
  const { context, page, consoleErrors } = await openConsole({ fieldUnit: "u-02", gpsTickMs: 300, sync: { offlineMs: 600_000 } });
  try {
    await page.setViewportSize({ width: 1280, height: 800 });
    await waitReady(page);
    const field = page.locator("#field-assignment");
    await field.waitFor();
    assert.match(await page.locator("#field-me").innerText(), /巡02/);
    assert.equal(await page.locator("#field-me [data-unit-status]").getAttribute("data-unit-status"), "dispatched");
    assert.equal(await page.locator("#field-address").innerText(), "Avinguda Meritxell, Andorra la Vella");
    assert.match(await page.locator("#field-notes").innerText(), /报警人在路口东侧等候/);
    // Dispatched: acknowledge, en route, on scene and clear are all allowed.
    const enabled = () =>
      page.locator("[data-field-action]").evaluateAll((els) => els.filter((e) => !e.disabled).map((e) => e.getAttribute("data-field-action")));
    assert.deepEqual(await enabled(), ["ack", "en_route", "on_scene", "clear"]);
    assert.deepEqual(await page.locator("[data-field-action]").allInnerTexts(), ["确认", "出发", "到达", "完成"]);
    // The receiver: connected, counting, its fix with an age; the map is centred on the unit.
    assert.equal(await page.locator("#gps-status").getAttribute("data-gps"), "connected");
    assert.match(await page.locator("#gps-status").innerText(), /\/dev\/ttyUSB0/);
    const fixes0 = await page.evaluate(() => window.__outpostMock.gps.fixes);
    await page.waitForFunction((f) => window.__outpostMock.gps.fixes >= f + 3, fixes0);
    await page.waitForFunction(() => /定位 \d+ · 语句 \d+ · 跳过 \d+/.test(document.querySelector("[data-gps-counts]")?.textContent ?? ""));
    assert.match(await page.locator("#gps-status [data-fix-age]").innerText(), /^\d+ 秒$/);

    // 确认: the acknowledgement lands in the incident's timeline and the button says when.
    await page.click("[data-field-action='ack']");
    await page.waitForSelector("[data-field-action='ack']:disabled");
    assert.match(await page.locator("[data-field-action='ack']").innerText(), /已确认 \d{2}:\d{2}:\d{2}/);
    const accidentId = await page.locator("[data-incident-id-field]").getAttribute("data-incident-id-field");
    assert.equal(await page.evaluate((id) => window.__outpostMock.detail(id).timeline.at(-1).event.text, accidentId), "巡02 acknowledged");
    // 出发: en route; the unit drives towards the incident, the map keeps it centred.
    await page.click("[data-field-action='en_route']");
    await page.waitForSelector("#field-me [data-unit-status='en_route']");
    assert.deepEqual(await enabled(), ["on_scene", "clear"]);
    assert.equal(await page.locator("[data-field-action='en_route']").getAttribute("aria-pressed"), "true");
    const dist = () =>
      page.evaluate((id) => {
        const m = window.__outpostMock;
        const u = m.units.find((x) => x.id === "u-02");
        const at = m.detail(id).summary.location;
        return Math.hypot(u.fix.position.lat - at.lat, u.fix.position.lon - at.lon);
      }, accidentId);
    const d0 = await dist();
    await page.waitForFunction(([id, d]) => {
      const m = window.__outpostMock;
      const u = m.units.find((x) => x.id === "u-02");
      const at = m.detail(id).summary.location;
      return Math.hypot(u.fix.position.lat - at.lat, u.fix.position.lon - at.lon) < d - 1e-5;
    }, [accidentId, d0]);
    await page.waitForFunction(() => {
      const u = window.__outpostMock.units.find((x) => x.id === "u-02").fix.position;
      const c = window.__outpost.map.getCenter();
      return Math.abs(c.lng - u.lon) < 2e-4 && Math.abs(c.lat - u.lat) < 2e-4;
    });
    // Offline: the positions written wait in the positions lane.
    assert.ok((await page.evaluate(() => window.__outpostMock.syncStatus().pending.positions)) > 180);
    // A note from the field.
    await page.fill("#field-note", "前方道路拥堵，预计 3 分钟到达");
    await page.click("#field-note-submit");
    await page.waitForFunction(() => document.querySelector("#field-notes")?.textContent?.includes("前方道路拥堵"));
    await page.screenshot({ path: join(outDir, "field.png") });
    // Dragging the map lets go of the unit; "centre on me" brings it back.
    const box = await page.locator(".field-map .map").boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 120, box.y + box.height / 2 + 60, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction(() => document.querySelector("#field-follow")?.checked === false);
    await page.click("#field-centre");
    // 到达, then 完成: the assignment is released and the buttons go quiet.
    await page.click("[data-field-action='on_scene']");
    await page.waitForSelector("#field-me [data-unit-status='on_scene']");
    assert.deepEqual(await enabled(), ["clear"]);
    await page.click("[data-field-action='clear']");
    await page.waitForSelector("#field-no-assignment");
    assert.equal(await page.locator("#field-me [data-unit-status]").getAttribute("data-unit-status"), "available");
    assert.deepEqual(await enabled(), []);
    assert.deepEqual(consoleErrors, []);
  } finally {
    await context.close();
  }
});

// Dispatch intelligence (issue 5, helper E): closest units, D, routes, coverage, the field route.
test("closest units: five ranked with ETAs and routes, D dispatches the first once, coverage 1-3-5 updates", async () => {
  const { context, page, consoleErrors } = await openConsole();
  try {
    await waitReady(page);
    // The fire: 巡03 is on it, the other five units are available.
    const fireId = await page.evaluate(() => [...window.__outpostMock.incidents.values()].find((r) => r.detail.summary.incident_type === "fire").detail.summary.id);
    await page.click(`[data-incident-id="${fireId}"]`);
    const rows = page.locator("#closest-units [data-closest-unit]");
    await page.waitForFunction(() => document.querySelectorAll("#closest-units [data-closest-unit]").length === 5);
    assert.equal(await page.locator("#closest-title").innerText(), "最近可用单位");
    assert.deepEqual(await rows.evaluateAll((els) => els.map((e) => e.getAttribute("data-rank"))), ["1", "2", "3", "4", "5"]);
    const etas = await rows.locator(".closest-eta").allInnerTexts();
    for (const e of etas) assert.match(e, /^(\d+ 分 )?\d+ 秒$/);
    const etaS = await rows.locator(".closest-eta").evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-eta-s"))));
    assert.deepEqual([...etaS].sort((a, b) => a - b), etaS);
    assert.equal(await rows.first().getAttribute("data-closest-unit"), "u-04");
    assert.match(await rows.first().locator("button").innerText(), /派遣\s*D/);
    // Five routes on the map, the first one bold; an ETA label at each unit's end.
    await page.waitForFunction(async () => {
      const map = window.__outpost.map;
      const src = map.getSource("routes");
      if (!src || !map.getLayer("routes-line") || !map.getLayer("route-ends-label")) return false;
      const data = await src.getData();
      return data.features.length === 5 && data.features.filter((f) => f.properties.first).length === 1;
    });
    await page.screenshot({ path: join(outDir, "closest-units.png") });

    // D (focus is not in a text field): 摩01 is dispatched, once.
    await page.locator("#closest-title").click();
    await page.keyboard.press("d");
    await page.waitForFunction(() => window.__outpostMock.units.find((u) => u.id === "u-04").status === "dispatched");
    await page.waitForSelector("#incident-detail [data-assignment-unit='u-04']");
    await page.waitForFunction(() => document.querySelectorAll("#closest-units [data-closest-unit]").length === 4);
    assert.equal(await page.locator("#closest-units [data-closest-unit='u-04']").count(), 0);
    const assigned = await page.evaluate((id) => window.__outpostMock.detail(id).timeline.filter((e) => e.event.kind === "unit_assigned").length, fireId);
    assert.equal(assigned, 2); // 巡03 before, 摩01 now: one dispatch for one key press
    // Typing a D in the note does not dispatch (巡03 and 摩01 stay the only dispatched units).
    const dispatched = () => page.evaluate(() => window.__outpostMock.units.filter((u) => u.status === "dispatched").map((u) => u.id).sort());
    assert.deepEqual(await dispatched(), ["u-03", "u-04"]);
    await page.locator("#incident-note").press("d");
    await page.locator("#incident-note").press("D");
    assert.equal(await page.inputValue("#incident-note"), "dD");
    assert.deepEqual(await dispatched(), ["u-03", "u-04"]);

    // Coverage: the figure counts the four available units left (the layer also two stations
    // and a post); another dispatch lowers it.
    await page.click("#coverage-toggle");
    await page.waitForSelector("#coverage-figure");
    assert.equal(await page.locator("#coverage-figure").innerText(), "3 分钟覆盖率 20%");
    assert.equal(await page.locator("#coverage-minor").innerText(), "1 分钟 6% · 5 分钟 28%");
    assert.equal(await page.locator("#coverage-layer").innerText(), "含警务站/派出所：3 分钟 32%（图层）");
    assert.equal(await page.locator(".coverage-legend li").count(), 4);
    await page.waitForFunction(async () => {
      const map = window.__outpost.map;
      const src = map.getSource("coverage");
      if (!src || !map.getLayer("coverage-bands") || !map.getLayer("coverage-holes")) return false;
      return (await src.getData()).features.length === 4;
    });
    await page.locator("#closest-units [data-closest-unit] button").first().click();
    await page.waitForFunction(() => document.querySelector("#coverage-figure")?.textContent === "3 分钟覆盖率 15%");
    await page.screenshot({ path: join(outDir, "coverage.png") });
    // Off: the layer empties, the figure goes.
    await page.click("#coverage-toggle");
    await page.waitForSelector("#coverage-figure", { state: "detached" });
    await page.waitForFunction(async () => (await window.__outpost.map.getSource("coverage").getData()).features.length === 0);
    // Closing the card takes the routes off the map.
    await page.keyboard.press("Escape");
    await page.waitForFunction(async () => (await window.__outpost.map.getSource("routes").getData()).features.length === 0);

    // An incident far off the fake's roads: the reason once, units by straight line, D sends the nearest.
    const farId = await page.evaluate(
      () =>
        window.__outpostMock.handle("create_incident", {
          args: { incident_type: "other", priority: null, location: { lat: 42.7, lon: 1.5211 }, address: "Far away", description: "" },
        }).summary.id,
    );
    await page.waitForSelector(`[data-incident-id="${farId}"]`);
    await page.click(`[data-incident-id="${farId}"]`);
    await page.waitForSelector("#closest-units .closest-straight");
    assert.equal(await page.locator("#closest-unavailable").innerText(), "无法按道路排序：事件地点不在道路网上（最近道路 11.4 km） 按直线距离排列，非道路距离");
    const straight = await page.locator("#closest-units [data-closest-unit] .closest-straight").evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-straight-m"))));
    assert.ok(straight.length >= 1);
    assert.deepEqual([...straight].sort((a, b) => a - b), straight);
    assert.match(await page.locator("#closest-units [data-closest-unit] .closest-straight").first().innerText(), /^直线 \d+\.\d km$/);
    const nearest = await page.locator("#closest-units [data-closest-unit]").first().getAttribute("data-closest-unit");
    await page.locator("#closest-title").click();
    await page.keyboard.press("d");
    await page.waitForFunction((id) => window.__outpostMock.units.find((u) => u.id === id).status === "dispatched", nearest);
    assert.deepEqual(consoleErrors, []);
  } finally {
    await context.close();
  }
});

test("the field laptop shows the route to its assignment with ETA and road distance", async () => {
  const { context, page, consoleErrors } = await openConsole({ fieldUnit: "u-02", gpsTickMs: 0 });
  try {
    await waitReady(page);
    await page.waitForSelector("#field-route");
    assert.match(await page.locator("#field-route").innerText(), /^路线：预计 (\d+ 分 )?\d+ 秒 到达 · 道路 \d+\.\d 公里$/);
    await page.waitForFunction(async () => {
      const src = window.__outpost.map.getSource("routes");
      return src && (await src.getData()).features.length === 1;
    });
    assert.deepEqual(consoleErrors, []);
  } finally {
    await context.close();
  }
});

// ---- Road closures, facility import and the map search (issue 5, helper F) ----

/** Where a WGS-84 point is on the page now. */
async function pointOnPage(page, lon, lat) {
  const box = await page.locator(".map").boundingBox();
  const p = await page.evaluate(([x, y]) => window.__outpost.map.project([x, y]), [lon, lat]);
  return { x: box.x + p.x, y: box.y + p.y };
}

test("a road closure drawn with two clicks and a reason is listed and drawn, and lifting it takes it off the map", async () => {
  const { context, page, consoleErrors } = await openConsole();
  try {
    await waitReady(page);
    await page.click("#open-closures");
    await page.waitForSelector("#closures-panel");
    await page.click("#closure-draw-line");
    await page.waitForSelector("#closure-drawing");
    await page.waitForTimeout(300); // the map resized for the side panel
    // Two clicks along a street away from the unit and incident markers.
    const a = await pointOnPage(page, 1.5160, 42.5100);
    const b = await pointOnPage(page, 1.5200, 42.5130);
    await page.mouse.click(a.x, a.y);
    await page.waitForSelector("[data-draw-count='1']");
    await page.mouse.click(b.x, b.y);
    await page.waitForSelector("[data-draw-count='2']");
    // No card opened by those clicks; the snapped line (with its midpoint) is previewed.
    assert.equal(await page.locator("#unit-card, #facility-card").count(), 0);
    await page.waitForFunction(async () => {
      const d = await window.__outpost.map.getSource("closure-drawing").getData();
      const line = d.features.find((f) => f.geometry.type === "LineString");
      return line?.geometry.coordinates.length === 3;
    });
    await page.keyboard.press("Enter");
    await page.waitForSelector("#closure-form");
    // Saving without a reason is refused inline; the drawing stays.
    await page.click("#closure-save");
    assert.equal(await page.locator("#closure-error").innerText(), "请填写原因");
    await page.click("[data-preset='closure.preset.flooding']");
    await page.selectOption("#closure-end", "3");
    await page.click("#closure-save");
    const row = page.locator("[data-closure-state='active']");
    await row.waitFor();
    assert.match(await row.innerText(), /积水/);
    assert.match(await row.innerText(), /剩余 (2|3) 小时/);
    assert.equal(await page.locator("#closures-badge").innerText(), "1");
    // On the map: one dashed red line, rendered where the clicks were.
    await page.waitForFunction(() => window.__outpost.map.queryRenderedFeatures({ layers: ["closures-line"] }).length > 0);
    const drawn = await page.evaluate(() => window.__outpost.map.queryRenderedFeatures({ layers: ["closures-line"] }).map((f) => f.properties.reason));
    assert.deepEqual([...new Set(drawn)], ["积水"]);
    const saved = await page.evaluate(() => window.__outpostMock.closures.list.map((v) => v.closure.shape));
    assert.equal(saved.length, 1);
    assert.equal(saved[0].type, "line");
    assert.equal(saved[0].points.length, 3);
    // Hovering the line shows its reason and time left.
    const mid = await pointOnPage(page, 1.5180, 42.5115);
    await page.mouse.move(mid.x, mid.y);
    await page.waitForSelector(".closure-popup");
    assert.match(await page.locator(".closure-popup").innerText(), /^封路：积水 · 剩余 (2|3) 小时$/);
    // The drawing layer is empty again.
    await page.waitForFunction(async () => (await window.__outpost.map.getSource("closure-drawing").getData()).features.length === 0);
    await page.screenshot({ path: join(outDir, "closure.png") });

    // Lift, with a confirm.
    await row.locator("[data-lift]").click();
    await row.locator("[data-lift-confirm]").click();
    await page.waitForSelector("[data-closure-state='lifted']");
    assert.equal(await page.locator("[data-closure-state='active']").count(), 0);
    await page.waitForFunction(async () => (await window.__outpost.map.getSource("closures").getData()).features.length === 0);
    assert.equal(await page.locator("#closures-badge").count(), 0);
    assert.deepEqual(consoleErrors, []);
  } finally {
    await context.close();
  }
});

test("a closed area is drawn with three clicks; Esc cancels a drawing without closing the panel", async () => {
  const { context, page, consoleErrors } = await openConsole();
  try {
    await waitReady(page);
    await page.click("#open-closures");
    await page.click("#closure-draw-area");
    await page.waitForTimeout(300);
    const corners = [
      [1.514, 42.503],
      [1.518, 42.503],
      [1.518, 42.5055],
    ];
    for (const [lon, lat] of corners) {
      const p = await pointOnPage(page, lon, lat);
      await page.mouse.click(p.x, p.y);
    }
    await page.waitForSelector("[data-draw-count='3']");
    await page.keyboard.press("Escape");
    await page.waitForSelector("#closure-drawing", { state: "detached" });
    assert.equal(await page.locator("#closures-panel").count(), 1);
    await page.click("#closure-draw-area");
    for (const [lon, lat] of corners) {
      const p = await pointOnPage(page, lon, lat);
      await page.mouse.click(p.x, p.y);
    }
    await page.click("#closure-finish");
    await page.fill("#closure-reason", "塌方 K3+200");
    await page.selectOption("#closure-end", "none");
    await page.click("#closure-save");
    await page.waitForSelector("[data-closure-state='active']");
    assert.match(await page.locator("[data-closure-state='active']").innerText(), /直至解除/);
    await page.waitForFunction(() => window.__outpost.map.queryRenderedFeatures({ layers: ["closures-area-fill"] }).length > 0);
    await page.screenshot({ path: join(outDir, "closure-area.png") });
    const ring = await page.evaluate(() => window.__outpostMock.closures.list[0].closure.shape);
    assert.equal(ring.type, "area");
    assert.equal(ring.ring.length, 3);
    assert.deepEqual(consoleErrors, []);
  } finally {
    await context.close();
  }
});

test("facility import: a bad row shows its problem and no Import button; a good file imports its facilities", async () => {
  const { context, page, consoleErrors } = await openConsole();
  try {
    await waitReady(page);
    // From the settings panel.
    await page.click("#open-settings");
    await page.click("#open-import");
    await page.waitForSelector("#import-panel");
    const header = "id,kind,name_zh,name_en,lat,lon\n";
    await page.setInputFiles("#import-file", {
      name: "bad.csv",
      mimeType: "text/csv",
      buffer: Buffer.from(`${header}post-new,post,新警务站,New Post,91,1.52\n`),
    });
    await page.waitForSelector("#import-file-name");
    await page.click("#import-preview");
    await page.waitForSelector("[data-import-problem]");
    assert.match(await page.locator("[data-import-problem]").innerText(), /^line 2, column lat: latitude 91 is outside −90\.\.90$/);
    assert.equal(await page.locator("#import-commit").count(), 0);

    await page.setInputFiles("#import-file", {
      name: "posts.csv",
      mimeType: "text/csv",
      buffer: Buffer.from(`${header}post-new,post,新警务站,New Post,42.5092,1.5184\nchk-west,checkpoint,西检查站,West Checkpoint,42.5050,1.5150\n`),
    });
    await page.waitForFunction(() => document.querySelector("#import-file-name")?.textContent.includes("posts.csv"));
    await page.click("#import-preview");
    await page.waitForSelector("#import-table");
    assert.equal(await page.locator("[data-import-problem]").count(), 0);
    assert.equal(await page.locator("[data-import-facility='post-new'] [data-lat]").innerText(), "42.509200");
    assert.equal(await page.locator("#import-commit").innerText(), "导入 2 个设施");
    await page.click("#import-commit");
    await page.waitForSelector("#import-done");
    assert.equal(await page.locator("#import-done").innerText(), "已导入 2 个设施");
    assert.equal(await page.evaluate(() => window.__outpostMock.facilities.length), 6);
    await page.screenshot({ path: join(outDir, "import.png") });
    // Both are on the map.
    await page.waitForFunction(() => new Set(window.__outpost.map.queryRenderedFeatures({ layers: ["facilities"] }).map((f) => f.properties.id)).has("chk-west"));
    // The same file again: nothing new or changed, and the panel says so.
    await page.click("#import-preview");
    await page.waitForSelector("#import-commit");
    await page.click("#import-commit");
    await page.waitForFunction(() => document.querySelector("#import-done")?.textContent === "没有变化：2 个设施已是最新");
    assert.equal(await page.locator("#import-table").count(), 0);
    assert.equal(await page.evaluate(() => window.__outpostMock.facilities.length), 6);
    assert.deepEqual(consoleErrors, []);
  } finally {
    await context.close();
  }
});

test("facility import: a GBK file is read as GB18030 with a note; a facility outside the map is an amber warning that does not block the import", async () => {
  const { context, page, consoleErrors } = await openConsole();
  try {
    await waitReady(page);
    await page.click("#open-settings");
    await page.click("#open-import");
    await page.waitForSelector("#import-panel");
    // Excel's "CSV" on Chinese Windows: GBK. "警务站" is be af ce f1 d5 be, "西检查站" ce f7 bc ec b2 e9 d5 be.
    const gbk = (hex) => Buffer.from(hex.replace(/ /g, ""), "hex");
    const buffer = Buffer.concat([
      Buffer.from("id,kind,name_zh,name_en,lat,lon\r\npost-gbk,post,"),
      gbk("be af ce f1 d5 be"),
      Buffer.from(",GBK Post,42.5092,1.5184\r\nchk-swapped,checkpoint,"),
      gbk("ce f7 bc ec b2 e9 d5 be"),
      Buffer.from(",Swapped,1.5150,42.5050\r\n"),
    ]);
    await page.setInputFiles("#import-file", { name: "gbk.csv", mimeType: "text/csv", buffer });
    await page.waitForSelector("#import-encoding");
    assert.equal(await page.locator("#import-encoding").innerText(), "文件不是 UTF-8：已按 GB18030/GBK 编码读取");
    await page.click("#import-preview");
    await page.waitForSelector("#import-table");
    assert.match(await page.locator("[data-import-facility='post-gbk']").innerText(), /警务站 \/ GBK Post/);
    assert.match(await page.locator("[data-import-facility='chk-swapped']").innerText(), /西检查站 \/ Swapped/);
    assert.equal(await page.locator("[data-import-problem]").count(), 0);
    assert.equal(await page.locator("#import-warnings strong").innerText(), "1 个设施位于地图区域之外——请检查经纬度顺序和坐标系");
    assert.match(await page.locator("[data-import-warning='facility chk-swapped']").innerText(), /^facility chk-swapped: 1\.515000,42\.505000 is outside the area pack/);
    // Amber, not the problems' red.
    const border = await page.locator("#import-warnings").evaluate((e) => getComputedStyle(e).borderTopColor);
    assert.equal(border, "rgb(212, 167, 44)");
    assert.equal(await page.locator("#import-commit").isEnabled(), true);
    await page.click("#import-commit");
    await page.waitForSelector("#import-done");
    assert.equal(await page.locator("#import-done").innerText(), "已导入 2 个设施");
    assert.equal(await page.evaluate(() => window.__outpostMock.facilities.find((f) => f.id === "post-gbk")?.name_zh), "警务站");
    assert.deepEqual(consoleErrors, []);
  } finally {
    await context.close();
  }
});

test("the map search ranks near the map centre, and picking a hit moves the map there with a marker", async () => {
  const { context, page, consoleErrors } = await openConsole();
  try {
    await waitReady(page);
    const before = await page.evaluate(() => window.__outpost.map.getCenter().toArray());
    await page.fill("#map-search", "Escaldes");
    const hits = page.locator("#map-search-box [data-search-hit]");
    await hits.first().waitFor();
    // Both Escaldes hits, nearest to the map centre first: the hospital (1.4 km) before the town (1.5 km).
    assert.equal(await hits.count(), 2);
    assert.match(await hits.nth(0).innerText(), /Hospital Nostra Senyora de Meritxell[\s\S]*1\.4 km/);
    assert.match(await hits.nth(1).innerText(), /埃斯卡尔德-恩戈尔达[\s\S]*1\.5 km/);
    await hits.first().click();
    await page.waitForFunction(() => {
      const c = window.__outpost.map.getCenter();
      return Math.abs(c.lat - 42.5113) < 2e-4 && Math.abs(c.lng - 1.5372) < 2e-4;
    });
    const after = await page.evaluate(() => window.__outpost.map.getCenter().toArray());
    assert.ok(Math.abs(after[0] - before[0]) > 0.01, `the centre moved east: ${before} → ${after}`);
    assert.equal(await page.locator(".search-marker").count(), 1);
    assert.equal(await page.locator("#map-search").inputValue(), "");
    // No new-incident form: the map search only shows the place.
    assert.equal(await page.locator("#new-incident-form").count(), 0);
    assert.deepEqual(consoleErrors, []);
  } finally {
    await context.close();
  }
});

// Sign-in (issue 6). The fake's accounts all have the password below and accept one code
// (src/mock/auth.ts: MOCK_PASSWORD, MOCK_TOTP_CODE).
const MOCK_PASSWORD = "correct horse battery";
const MOCK_CODE = "246810";

test("first run: create the account, the TOTP secret as text and a QR code drawn under the CSP, a wrong code refused, then the console; lock and unlock", async () => {
  const { context, page, requests, consoleErrors } = await openConsole({ auth: { state: "setup", serverUrl: null } });
  try {
    await page.locator("#setup-account").waitFor();
    // zh-CN first.
    assert.equal(await page.locator("#setup-account h2").innerText(), "创建第一个账户");
    await page.fill("#auth-user", "wang.qiang");
    await page.fill("#auth-display-name", "王强");
    await page.fill("#auth-password", "too short");
    await page.fill("#auth-password2", "too short");
    await page.click("#setup-next");
    assert.match(await page.locator("#auth-error").innerText(), /至少需要 12 个字符/);
    await page.fill("#auth-password", "a long pass phrase");
    await page.fill("#auth-password2", "a long pass phrase");
    await page.click("#setup-next");
    const secret = await page.locator("#totp-secret").getAttribute("data-totp-secret");
    assert.match(secret, /^[A-Z2-7]{16,}$/);
    // The QR code is an image the page drew itself and the CSP let load.
    const qr = page.locator("#totp-qr");
    await qr.waitFor();
    await page.waitForFunction(() => document.querySelector("#totp-qr")?.complete && document.querySelector("#totp-qr").naturalWidth > 0);
    assert.match(await qr.getAttribute("src"), /^data:image\/svg\+xml/);
    await page.screenshot({ path: join(outDir, "setup-totp.png") });
    await page.fill("#auth-code", "123456");
    await page.click("#setup-confirm");
    assert.match(await page.locator("#auth-error [data-error-message]").innerText(), /wrong code/);
    await page.fill("#auth-code", MOCK_CODE);
    await page.click("#setup-confirm");
    await waitReady(page);
    assert.equal(await page.locator("#auth-bar").getAttribute("data-user"), "wang.qiang");
    assert.equal(await page.locator("#auth-bar").getAttribute("data-role"), "commander");
    assert.match(await page.locator("#auth-bar").innerText(), /王强[\s\S]*指挥员[\s\S]*本机/);
    // Lock: the lock screen names the person; the wrong password is refused with its message.
    await page.click("#lock-console");
    await page.locator("#unlock").waitFor();
    assert.equal(await page.locator("[data-incident-id]").count(), 0);
    assert.equal(await page.locator("#locked-user").getAttribute("data-locked-user"), "wang.qiang");
    await page.fill("#auth-password", "not my password");
    await page.click("#unlock-submit");
    assert.match(await page.locator("#auth-error").innerText(), /wrong password/);
    await page.fill("#auth-password", "a long pass phrase");
    await page.click("#unlock-submit");
    await waitReady(page);
    const foreign = requests.filter((u) => !u.startsWith(server.origin) && !u.startsWith("data:") && !u.startsWith("blob:"));
    assert.deepEqual(foreign, []);
    assert.deepEqual(consoleErrors, []);
  } finally {
    await context.close();
  }
});

test("sign in: the known users with their offline-until, an offline sign-in shown as such; sign out", async () => {
  const until = new Date(Date.now() + 48 * 3600_000).toISOString();
  const { context, page, consoleErrors } = await openConsole({
    settings: { language: "en" },
    auth: { state: "signed_out", serverReachable: false, knownUsers: [{ user: "li.na", display_name: "调度员 李娜", role: "dispatcher", offline_until: until }] },
  });
  try {
    const row = page.locator('[data-known-user="li.na"]');
    await row.waitFor();
    assert.match(await row.innerText(), /调度员 李娜 \(li\.na\)[\s\S]*离线登录有效至/);
    assert.equal(await row.locator("[data-offline-until]").getAttribute("data-offline-until"), until);
    assert.equal(await page.inputValue("#auth-user"), "li.na");
    await page.fill("#auth-password", MOCK_PASSWORD);
    await page.fill("#auth-code", "000000");
    await page.click("#sign-in-submit");
    assert.match(await page.locator("#auth-error").innerText(), /wrong user name, password or code/);
    await page.fill("#auth-code", MOCK_CODE);
    await page.click("#sign-in-submit");
    await waitReady(page);
    assert.equal(await page.locator("#auth-bar").getAttribute("data-sign-in"), "offline");
    await page.click("#sign-out");
    await page.locator("#sign-in").waitFor();
    assert.deepEqual(consoleErrors, []);
  } finally {
    await context.close();
  }
});

test("enroll a device, and a revoked device's message", async () => {
  const { context, page } = await openConsole({ auth: { state: "enroll", serverUrl: "https://10.20.0.5:7400" } });
  try {
    await page.locator("#enroll-device").waitFor();
    assert.equal(await page.inputValue("#enroll-server"), "https://10.20.0.5:7400");
    await page.fill("#auth-user", "li.na");
    await page.fill("#auth-password", MOCK_PASSWORD);
    await page.fill("#auth-code", MOCK_CODE);
    await page.click("#enroll-submit");
    assert.match(await page.locator("#auth-error").innerText(), /give the device a name/);
    await page.fill("#enroll-device-name", "指挥车 3");
    await page.click("#enroll-submit");
    await waitReady(page);
    assert.equal(await page.locator("#auth-bar").getAttribute("data-sign-in"), "online");
  } finally {
    await context.close();
  }
  const revoked = await openConsole({ auth: { state: "revoked", message: "device dev-7 revoked: stolen" } });
  try {
    await revoked.page.locator("#auth-revoked").waitFor();
    assert.match(await revoked.page.locator("#auth-revoked").innerText(), /本设备已被吊销[\s\S]*device dev-7 revoked: stolen/);
    assert.equal(await revoked.page.locator("form").count(), 0);
  } finally {
    await revoked.context.close();
  }
});

test("the idle lock: no input for idle_lock_s locks the console (fake clock); input restarts the wait", async () => {
  const { context, page } = await openConsole({ settings: { language: "en" }, auth: { idleLockS: 300 } }, { clock: true });
  try {
    await page.locator("#auth-bar").waitFor();
    await page.clock.fastForward(299_000);
    assert.equal(await page.evaluate(() => window.__outpostMock.auth.state), "signed_in");
    await page.mouse.move(400, 300);
    await page.mouse.move(420, 310);
    await page.clock.fastForward(299_000);
    assert.equal(await page.evaluate(() => window.__outpostMock.auth.state), "signed_in");
    await page.clock.fastForward(2_000);
    await page.locator("#unlock").waitFor();
    assert.equal(await page.evaluate(() => window.__outpostMock.auth.state), "locked");
  } finally {
    await context.close();
  }
});

test("role-aware: a viewer sees no write action; an administrator is read only too", async () => {
  for (const user of ["viewer", "admin"]) {
    const { context, page } = await openConsole({ settings: { language: "en" }, auth: { user } });
    try {
      await waitReady(page);
      assert.equal(await page.locator("#new-incident").count(), 0, user);
      assert.match(await page.locator("#auth-bar").innerText(), /read only/);
      await page.locator("[data-incident-id]").first().click();
      await page.locator("#incident-detail").waitFor();
      for (const sel of ["#incident-acknowledge", "#assign-unit", "#incident-note", "#incident-close", "[data-release]"]) {
        assert.equal(await page.locator(`#incident-detail ${sel}`).count(), 0, `${user}: ${sel}`);
      }
    } finally {
      await context.close();
    }
  }
});
