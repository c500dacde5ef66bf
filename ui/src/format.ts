// Time and number formatting. Times are stored in UTC and shown in local time with the date.

import { type Lang, locale, t } from "./i18n";

const dateTimeFormats = new Map<string, Intl.DateTimeFormat>();

/** Local date and time, e.g. `2026/11/29 19:32:05` (zh) or `29/11/2026, 19:32:05` (en). */
export function formatDateTime(iso: string, lang: Lang, timeZone?: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const key = `${lang}|${timeZone ?? ""}`;
  let f = dateTimeFormats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(locale(lang), {
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
      timeZone,
    });
    dateTimeFormats.set(key, f);
  }
  return f.format(new Date(ms));
}

/** A running duration as `m:ss` or `h:mm:ss` (the status board's time in status). */
export function formatClock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** A coarse age for labels: `45 s`, `3 min`, `2 h` (or the zh equivalents). */
export function formatAge(seconds: number, lang: Lang): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return t(lang, "age.s", { n: s });
  if (s < 3600) return t(lang, "age.m", { n: Math.floor(s / 60) });
  return t(lang, "age.h", { n: Math.floor(s / 3600) });
}

/** Seconds between an ISO time and `nowMs` (0 when the time is in the future or unparsable). */
export function secondsSince(iso: string, nowMs: number): number {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? 0 : Math.max(0, (nowMs - ms) / 1000);
}

/** `42.50780, 1.52110` (WGS-84 degrees, 5 decimals ≈ 1 m). */
export function formatLatLon(lat: number, lon: number): string {
  return `${lat.toFixed(5)}, ${lon.toFixed(5)}`;
}
