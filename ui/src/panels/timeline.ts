import type { IncidentFields, TimelineEvent } from "../bindings";
import { type Lang, label, t } from "../i18n";

/** The changed fields of a `set_fields` in words, `; `-separated. */
export function fieldChanges(lang: Lang, f: IncidentFields): string {
  const parts: string[] = [];
  if (f.incident_type) parts.push(`${t(lang, "detail.type")} ${label.incidentType(lang, f.incident_type)}`);
  if (f.priority) parts.push(`${t(lang, "detail.priority")} ${f.priority}`);
  if (f.address !== null) parts.push(`${t(lang, "detail.address")} ${f.address}`);
  if (f.location) parts.push(`${t(lang, "detail.location")} ${f.location.lat.toFixed(5)}, ${f.location.lon.toFixed(5)}`);
  if (f.description !== null) parts.push(`${t(lang, "detail.description")} ${f.description}`);
  return parts.join("; ");
}

/** One line describing a timeline event in `lang`. */
export function describeEvent(lang: Lang, e: TimelineEvent): string {
  switch (e.kind) {
    case "created":
      return t(lang, "tl.created", { type: label.incidentType(lang, e.incident_type), priority: e.priority, address: e.address });
    case "fields_changed":
      return t(lang, "tl.fields_changed", { changes: fieldChanges(lang, e.fields) });
    case "acknowledged":
      return t(lang, "tl.acknowledged");
    case "unit_assigned":
      return t(lang, "tl.unit_assigned", { callsign: e.callsign });
    case "unit_released":
      return t(lang, "tl.unit_released", { callsign: e.callsign });
    case "unit_status":
      return t(lang, "tl.unit_status", { callsign: e.callsign, status: label.unitStatus(lang, e.to) });
    case "note":
      return t(lang, "tl.note", { text: e.text });
    case "closed":
      return t(lang, "tl.closed", { disposition: label.disposition(lang, e.disposition), summary: e.summary }).trim();
    case "conflict_resolved":
      return t(lang, "tl.conflict_resolved", { note: e.note }).trim();
  }
}
