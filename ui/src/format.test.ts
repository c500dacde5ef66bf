import { describe, expect, it } from "vitest";
import { formatAge, formatClock, formatDateTime, secondsSince } from "./format";

describe("formatting", () => {
  it("shows local time with the date (Beijing time for a UTC instant)", () => {
    expect(formatDateTime("2026-11-29T12:32:05Z", "zh", "Asia/Shanghai")).toBe("2026/11/29 20:32:05");
    expect(formatDateTime("2026-11-29T12:32:05Z", "en", "Asia/Shanghai")).toBe("29/11/2026, 20:32:05");
    expect(formatDateTime("2026-11-29T23:59:59Z", "zh", "Asia/Shanghai")).toBe("2026/11/30 07:59:59");
  });
  it("ticks time in status as m:ss and h:mm:ss", () => {
    expect(formatClock(0)).toBe("0:00");
    expect(formatClock(65.9)).toBe("1:05");
    expect(formatClock(3600 + 62)).toBe("1:01:02");
    expect(formatClock(-5)).toBe("0:00");
  });
  it("coarsens ages", () => {
    expect(formatAge(45, "en")).toBe("45 s");
    expect(formatAge(185, "zh")).toBe("3 分钟");
    expect(formatAge(7300, "en")).toBe("2 h");
  });
  it("measures seconds since an instant", () => {
    expect(secondsSince("2026-11-29T10:00:00Z", Date.parse("2026-11-29T10:01:30Z"))).toBe(90);
    expect(secondsSince("garbage", 0)).toBe(0);
  });
});
