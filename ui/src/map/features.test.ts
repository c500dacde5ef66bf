import { describe, expect, it } from "vitest";
import type { UnitView } from "../bindings";
import { MockBackend } from "../mock/backend";
import { facilityFeatures, incidentFeatures, trackHeadFeatures, trackLineFeatures, unitFeatures } from "./features";
import { UNIT_STATUS_COLOURS } from "./style";

const NOW = Date.parse("2026-11-29T10:00:00Z");

describe("overlay features", () => {
  const mock = new MockBackend({ now: () => NOW });
  const state = mock.consoleState();

  it("has one feature per unit with a fix, coloured by status, stale after the threshold", () => {
    const noFix: UnitView = { ...state.units[0]!, id: "nofix", fix: null };
    const fc = unitFeatures([...state.units, noFix], NOW, 120, "en", "u-01");
    expect(fc.features.map((f) => f.id).sort()).toEqual(["u-01", "u-02", "u-03", "u-04", "u-05", "u-06"]);
    const byId = new Map(fc.features.map((f) => [f.id, f.properties]));
    // u-04's fix is 400 s old in the fake.
    expect(byId.get("u-04")).toMatchObject({ stale: true, age_s: 400, label: "摩01\n6 min" });
    expect(byId.get("u-01")).toMatchObject({ stale: false, label: "巡01", selected: true, heading: 45 });
    expect(byId.get("u-03")?.colour).toBe(UNIT_STATUS_COLOURS.dispatched);
    expect(byId.get("u-05")?.heading).toBeUndefined();
    // A longer threshold makes it fresh again; its age still shows (over a minute old).
    expect(unitFeatures(state.units, NOW, 600, "en", null).features.find((f) => f.id === "u-04")?.properties).toMatchObject({
      stale: false,
      label: "摩01\n6 min",
    });
    // u-05's fix is 30 s old: callsign only.
    expect(byId.get("u-05")?.label).toBe("步01");
  });

  it("puts coordinates in GeoJSON order (lon, lat)", () => {
    const f = unitFeatures(state.units, NOW, 120, "en", null).features.find((x) => x.id === "u-01");
    expect(f?.geometry.coordinates).toEqual([1.5228, 42.5071]);
  });

  it("hides closed incidents unless asked and names facilities by language", () => {
    expect(incidentFeatures(state.incidents, "zh", null, false).features).toHaveLength(3);
    const fire = incidentFeatures(state.incidents, "zh", null, false).features.find((f) => f.properties.priority === "P1");
    expect(fire?.properties).toMatchObject({ acknowledged: false, label: "P1 火警", status: "dispatched" });
    const fac = facilityFeatures(state.facilities, "zh").features;
    expect(fac.find((f) => f.id === "stn-centre")?.properties).toMatchObject({ label: "城区派出所", icon: "police" });
    expect(fac.find((f) => f.id === "chk-north")?.properties.icon).toBe("triangle");
    expect(facilityFeatures(state.facilities, "en").features[0]?.properties.label).toBe("Centre Police Station");
  });

  it("draws a track as one line of [lon, lat] and its playhead as one labelled point", () => {
    const line = [
      { lat: 42.5, lon: 1.5 },
      { lat: 42.51, lon: 1.52 },
    ];
    expect(trackLineFeatures(line).features[0]?.geometry).toEqual({ type: "LineString", coordinates: [[1.5, 42.5], [1.52, 42.51]] });
    // One fix is no line.
    expect(trackLineFeatures(line.slice(0, 1)).features).toEqual([]);
    const head = trackHeadFeatures({ at: { lat: 42.505, lon: 1.51 }, label: "巡01 10:00:05" }).features[0];
    expect(head?.geometry.coordinates).toEqual([1.51, 42.505]);
    expect(head?.properties.label).toBe("巡01 10:00:05");
    expect(trackHeadFeatures(null).features).toEqual([]);
  });
});
