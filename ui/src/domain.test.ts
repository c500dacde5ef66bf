import { describe, expect, it } from "vitest";
import type { IncidentSummary, UnitStatus, UnitView } from "./bindings";
import { allowedNext, assignableUnits, countByStatus, defaultPriority, fixAgeS, isStale, sortQueue, UNIT_STATUSES } from "./domain";

function incident(id: string, priority: IncidentSummary["priority"], created: string, status: IncidentSummary["status"] = "pending"): IncidentSummary {
  return {
    id,
    number: id,
    incident_type: "other",
    priority,
    status,
    location: { lat: 42.5, lon: 1.52 },
    address: "",
    created_at: created,
    acknowledged: false,
    assigned: [],
  };
}

function unit(id: string, status: UnitStatus, fixTime: string | null, lat = 42.5, lon = 1.52): UnitView {
  return {
    id,
    callsign: id,
    kind: "patrol_car",
    home_station: null,
    status,
    status_since: "2026-11-29T10:00:00Z",
    incident_id: null,
    incident_number: null,
    fix: fixTime ? { position: { lat, lon }, fix_time: fixTime, heading_deg: null, speed_mps: null, accuracy_m: null } : null,
  };
}

describe("incident queue order", () => {
  it("sorts priority first, then oldest first, closed last", () => {
    const rows = [
      incident("p3-old", "P3", "2026-11-29T08:00:00Z"),
      incident("p1-new", "P1", "2026-11-29T10:00:00Z"),
      incident("p1-closed", "P1", "2026-11-29T07:00:00Z", "closed"),
      incident("p1-old", "P1", "2026-11-29T09:00:00Z"),
      incident("p2", "P2", "2026-11-29T06:00:00Z", "on_scene"),
    ];
    expect(sortQueue(rows).map((r) => r.id)).toEqual(["p1-old", "p1-new", "p2", "p3-old", "p1-closed"]);
    // The input is not reordered.
    expect(rows[0]?.id).toBe("p3-old");
  });

  it("counts per status", () => {
    const rows = [
      incident("a", "P1", "2026-11-29T08:00:00Z"),
      incident("b", "P1", "2026-11-29T08:00:00Z", "dispatched"),
      incident("c", "P1", "2026-11-29T08:00:00Z", "dispatched"),
      incident("d", "P1", "2026-11-29T08:00:00Z", "closed"),
    ];
    expect(countByStatus(rows)).toEqual({ pending: 1, dispatched: 2, on_scene: 0, closed: 1 });
  });
});

describe("fix age and staleness", () => {
  const now = Date.parse("2026-11-29T10:05:00Z");
  it("measures the age of the newest fix in seconds", () => {
    expect(fixAgeS(unit("a", "available", "2026-11-29T10:04:30Z"), now)).toBe(30);
    expect(fixAgeS(unit("b", "available", null), now)).toBeNull();
    // A fix from a clock slightly ahead is age 0, not negative.
    expect(fixAgeS(unit("c", "available", "2026-11-29T10:05:02Z"), now)).toBe(0);
  });
  it("is stale beyond the threshold, and without a fix", () => {
    expect(isStale(unit("a", "available", "2026-11-29T10:03:00Z"), now, 120)).toBe(false); // exactly 120 s
    expect(isStale(unit("a", "available", "2026-11-29T10:02:59Z"), now, 120)).toBe(true); // 121 s
    expect(isStale(unit("a", "available", "2026-11-29T10:04:00Z"), now, 30)).toBe(true);
    expect(isStale(unit("b", "available", null), now, 120)).toBe(true);
  });
});

describe("status table (mirror of outpost-domain)", () => {
  it("matches the Rust transition table case by case", () => {
    // Copied from crates/outpost-domain/src/unit.rs `transition_table`.
    const legal: [UnitStatus, UnitStatus][] = [
      ["available", "busy"],
      ["available", "out_of_service"],
      ["dispatched", "en_route"],
      ["dispatched", "on_scene"],
      ["dispatched", "available"],
      ["en_route", "on_scene"],
      ["en_route", "available"],
      ["on_scene", "available"],
      ["busy", "available"],
      ["busy", "out_of_service"],
      ["out_of_service", "available"],
    ];
    for (const from of UNIT_STATUSES) {
      for (const to of UNIT_STATUSES) {
        const want = legal.some(([f, t]) => f === from && t === to);
        expect(allowedNext(from).includes(to), `${from} -> ${to}`).toBe(want);
      }
    }
  });

  it("defaults priorities by type like the domain", () => {
    expect(defaultPriority("fire")).toBe("P1");
    expect(defaultPriority("flood_rescue")).toBe("P1");
    expect(defaultPriority("theft")).toBe("P2");
    expect(defaultPriority("disturbance")).toBe("P3");
    expect(defaultPriority("other")).toBe("P4");
  });

  it("offers available units nearest first", () => {
    const at = { lat: 42.5, lon: 1.5 };
    const units = [
      unit("far", "available", "2026-11-29T10:00:00Z", 42.6, 1.5),
      unit("busy", "busy", "2026-11-29T10:00:00Z", 42.5, 1.5),
      unit("near", "available", "2026-11-29T10:00:00Z", 42.501, 1.5),
      unit("nofix", "available", null),
    ];
    expect(assignableUnits(units, at).map((u) => u.id)).toEqual(["near", "far", "nofix"]);
  });
});
