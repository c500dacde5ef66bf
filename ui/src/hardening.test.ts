// Hardening of the desktop shell (issue 6): the privileged window's content security policy
// has no remote source and nothing unsafe, Tauri may not loosen it, the capability grants
// only the app's own commands and the state-changed event, and no page of the UI loads
// anything from the network.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const UI = join(dirname(fileURLToPath(import.meta.url)), "..");
const TAURI = join(UI, "../src-tauri");
const conf = JSON.parse(readFileSync(join(TAURI, "tauri.conf.json"), "utf8"));

/** Sources allowed in the CSP: the app itself, inline data it makes, Tauri's IPC and our tile protocol. */
const LOCAL_SOURCES = new Set(["'self'", "'none'", "data:", "blob:", "ipc:", "outpost:", "http://ipc.localhost", "http://outpost.localhost"]);

/** Every key path in `v` (to find a setting wherever it is nested). */
function keys(v: unknown, path = ""): string[] {
  if (v === null || typeof v !== "object") return [];
  return Object.entries(v).flatMap(([k, x]) => [`${path}${k}`, ...keys(x, `${path}${k}.`)]);
}

function files(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) files(p, out);
    else out.push(p);
  }
  return out;
}

describe("content security policy (src-tauri/tauri.conf.json)", () => {
  const csp: Record<string, string> = conf.app.security.csp;

  it("is set, as directives, with default-src and script-src 'self' and no object or form targets", () => {
    expect(typeof csp).toBe("object");
    expect(csp["default-src"]).toBe("'self'");
    expect(csp["script-src"]).toBe("'self'");
    expect(csp["object-src"]).toBe("'none'");
    expect(csp["form-action"]).toBe("'none'");
    expect(csp["base-uri"]).toBe("'self'");
  });

  it("names no remote source, no wildcard and nothing unsafe", () => {
    for (const [directive, value] of Object.entries(csp)) {
      for (const source of value.split(/\s+/).filter(Boolean)) {
        expect(LOCAL_SOURCES.has(source), `${directive} allows ${source}`).toBe(true);
      }
      expect(value, directive).not.toMatch(/unsafe-|\*|https:|wss?:/);
    }
  });

  it("may not be loosened by Tauri: no dangerousDisableAssetCspModification, no remote IPC, no global Tauri object", () => {
    const all = keys(conf);
    expect(all.filter((k) => /dangerous/i.test(k))).toEqual([]);
    expect(all.filter((k) => /dangerousRemoteDomainIpcAccess|freezePrototype/.test(k))).toEqual([]);
    expect(conf.app.withGlobalTauri).toBe(false);
    for (const w of conf.app.windows) expect(w.url ?? "index.html", "window url").not.toMatch(/^https?:/);
  });
});

describe("capabilities (src-tauri/capabilities)", () => {
  it("grant the main window only core:default and listening to events, nothing remote", () => {
    const dir = join(TAURI, "capabilities");
    const caps = readdirSync(dir).filter((f) => f.endsWith(".json"));
    expect(caps).toEqual(["main.json"]);
    const main = JSON.parse(readFileSync(join(dir, "main.json"), "utf8"));
    expect(main.windows).toEqual(["main"]);
    expect([...main.permissions].sort()).toEqual(["core:default", "core:event:allow-listen", "core:event:allow-unlisten"]);
    expect(main.remote).toBeUndefined();
    expect(conf.app.security.capabilities).toEqual(["main"]);
  });
});

describe("no remote content in the UI", () => {
  it("index.html loads only its own script", () => {
    const html = readFileSync(join(UI, "index.html"), "utf8");
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/<meta[^>]+http-equiv/i);
  });

  it("the UI's code opens no network connection and names no remote host", () => {
    const sources = files(join(UI, "src")).filter((f) => /\.(ts|tsx|css|json)$/.test(f) && !/\.test\.|\/mock\//.test(f));
    expect(sources.length).toBeGreaterThan(20);
    // Host names allowed in a URL literal: placeholders and examples in hints, and localhost.
    const localHost = /^(localhost|[a-z]+\.localhost|127\.0\.0\.1|10\.\d+\.\d+\.\d+|host|HOST|主机)([:/]|$)/;
    for (const f of sources) {
      const text = readFileSync(f, "utf8");
      const name = relative(UI, f);
      expect(text, `${name} calls fetch/XMLHttpRequest/WebSocket/EventSource`).not.toMatch(/(?<![\w.`])fetch\(|XMLHttpRequest|new WebSocket|EventSource\(|sendBeacon/);
      for (const m of text.matchAll(/\b(?:https?|wss?):\/\/([^\s"'`)<>]+)/g)) {
        expect(localHost.test(m[1] ?? ""), `${name}: ${m[0]}`).toBe(true);
      }
    }
  });

  it("the map style and its sprites and glyphs come from the bundle", () => {
    for (const f of files(join(UI, "public")).filter((p) => p.endsWith(".json"))) {
      expect(readFileSync(f, "utf8"), relative(UI, f)).not.toMatch(/https?:\/\/(?!localhost)/);
    }
  });
});
