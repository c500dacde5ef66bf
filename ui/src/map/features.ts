// Console state -> GeoJSON for the overlay sources (one feature per unit, incident, facility).

import type { Facility, IncidentSummary, LatLon, UnitView } from "../bindings";
import { fixAgeS } from "../domain";
import { formatAge } from "../format";
import { type Lang, label } from "../i18n";
import { FACILITY_ICONS, UNIT_STATUS_COLOURS } from "./style";

/** A GeoJSON point feature with flat properties. */
export interface PointFeature<P> {
  type: "Feature";
  id: string;
  geometry: { type: "Point"; coordinates: [number, number] };
  properties: P;
}

export interface Collection<P> {
  type: "FeatureCollection";
  features: PointFeature<P>[];
}

export interface UnitProps {
  id: string;
  kind: "unit";
  callsign: string;
  status: string;
  colour: string;
  /** Degrees clockwise from true north; absent without a heading. */
  heading?: number;
  /** Fix age in seconds at build time. */
  age_s: number;
  stale: boolean;
  selected: boolean;
  /** Callsign, plus the fix age on a second line once it is a minute old or stale. */
  label: string;
}

export interface IncidentProps {
  id: string;
  kind: "incident";
  number: string;
  priority: string;
  status: string;
  acknowledged: boolean;
  selected: boolean;
  label: string;
}

export interface FacilityProps {
  id: string;
  kind: string;
  icon: string;
  label: string;
}

/** A fix at least this old (seconds) shows its age under the callsign, stale or not. */
export const AGE_LABEL_AFTER_S = 60;

/** Units with a fix; units without one cannot be drawn (the board still lists them). */
export function unitFeatures(
  units: UnitView[],
  nowMs: number,
  staleAfterS: number,
  lang: Lang,
  selectedId: string | null,
): Collection<UnitProps> {
  const features: PointFeature<UnitProps>[] = [];
  for (const u of units) {
    if (!u.fix) continue;
    const age = fixAgeS(u, nowMs) ?? 0;
    const stale = age > staleAfterS;
    const props: UnitProps = {
      id: u.id,
      kind: "unit",
      callsign: u.callsign,
      status: u.status,
      colour: UNIT_STATUS_COLOURS[u.status],
      age_s: Math.round(age),
      stale,
      selected: u.id === selectedId,
      label: stale || age >= AGE_LABEL_AFTER_S ? `${u.callsign}\n${formatAge(age, lang)}` : u.callsign,
    };
    if (u.fix.heading_deg !== null && Number.isFinite(u.fix.heading_deg)) props.heading = u.fix.heading_deg;
    features.push({
      type: "Feature",
      id: u.id,
      geometry: { type: "Point", coordinates: [u.fix.position.lon, u.fix.position.lat] },
      properties: props,
    });
  }
  return { type: "FeatureCollection", features };
}

/** Open incidents, plus closed ones when `showClosed`. */
export function incidentFeatures(
  incidents: IncidentSummary[],
  lang: Lang,
  selectedId: string | null,
  showClosed: boolean,
): Collection<IncidentProps> {
  return {
    type: "FeatureCollection",
    features: incidents
      .filter((i) => showClosed || i.status !== "closed")
      .map((i) => ({
        type: "Feature" as const,
        id: i.id,
        geometry: { type: "Point" as const, coordinates: [i.location.lon, i.location.lat] as [number, number] },
        properties: {
          id: i.id,
          kind: "incident" as const,
          number: i.number,
          priority: i.priority,
          status: i.status,
          acknowledged: i.acknowledged,
          selected: i.id === selectedId,
          label: `${i.priority} ${label.incidentType(lang, i.incident_type)}`,
        },
      })),
  };
}

/** Stations, posts and checkpoints with their icon and name in `lang`. */
export function facilityFeatures(facilities: Facility[], lang: Lang): Collection<FacilityProps> {
  return {
    type: "FeatureCollection",
    features: facilities.map((f) => ({
      type: "Feature" as const,
      id: f.id,
      geometry: { type: "Point" as const, coordinates: [f.position.lon, f.position.lat] as [number, number] },
      properties: {
        id: f.id,
        kind: f.kind,
        icon: FACILITY_ICONS[f.kind],
        label: (lang === "zh" ? f.name_zh || f.name_en : f.name_en || f.name_zh) ?? "",
      },
    })),
  };
}

/** Facility name in `lang`, falling back to the other script. */
export function facilityName(f: Facility, lang: Lang): string {
  return lang === "zh" ? f.name_zh || f.name_en : f.name_en || f.name_zh;
}

/** The track being played back: the line of its fixes and the playhead. */
export interface TrackOverlay {
  /** The fixes' positions, oldest first (WGS-84). */
  line: LatLon[];
  /** The playhead, with its label (callsign and playback time). */
  head: { at: LatLon; label: string } | null;
}

/** The track's line as one LineString (nothing for fewer than two fixes). */
export function trackLineFeatures(line: LatLon[]) {
  return {
    type: "FeatureCollection" as const,
    features:
      line.length < 2
        ? []
        : [
            {
              type: "Feature" as const,
              properties: {},
              geometry: { type: "LineString" as const, coordinates: line.map((p) => [p.lon, p.lat]) },
            },
          ],
  };
}

/** The playhead as one point. */
export function trackHeadFeatures(head: TrackOverlay["head"]) {
  return {
    type: "FeatureCollection" as const,
    features: head
      ? [{ type: "Feature" as const, properties: { label: head.label }, geometry: { type: "Point" as const, coordinates: [head.at.lon, head.at.lat] } }]
      : [],
  };
}
