import type { ConflictKind, IncidentFields, TimelineEvent } from "../bindings";
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

/** The kind in a conflict id's text form (merge.rs `ConflictId`: `field:…`, `double:…`, `closed:…`). */
export function conflictKindOfId(id: string): ConflictKind | null {
  const prefix = id.split(":", 1)[0];
  if (prefix === "field") return "field";
  if (prefix === "double") return "double_assignment";
  if (prefix === "closed") return "edit_after_close";
  return null;
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
    case "conflict_resolved": {
      const kind = conflictKindOfId(e.conflict_id);
      return t(lang, "tl.conflict_resolved", { kind: kind ? label.conflictKind(lang, kind) : e.conflict_id, note: e.note }).trim();
    }
  }
}
