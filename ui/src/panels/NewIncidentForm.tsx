import { useState } from "react";
import { type IncidentType, type LatLon, MAX_TEXT_CHARS, type NewIncident, type Priority } from "../bindings";
import { defaultPriority, INCIDENT_TYPES, PRIORITIES } from "../domain";
import { formatLatLon } from "../format";
import { type Lang, label, t } from "../i18n";
import { PlaceSearch } from "./PlaceSearch";
import { CloseButton } from "./CloseButton";

/** Where the new incident is, as far as the form knows. */
export interface Draft {
  location: LatLon | null;
  address: string;
  /** True while describeLocation runs for a right-click. */
  describing?: boolean;
}

export interface NewIncidentFormProps {
  lang: Lang;
  draft: Draft;
  /** The map centre, used when no location was picked. */
  centre: LatLon;
  busy: boolean;
  onDraft: (d: Draft) => void;
  onSubmit: (n: NewIncident) => void;
  onCancel: () => void;
}

/** The new-incident form: address (offline search or right-click), type, priority, description. */
export function NewIncidentForm(p: NewIncidentFormProps) {
  const [type, setType] = useState<IncidentType>("other");
  const [priority, setPriority] = useState<Priority | "">("");
  const [description, setDescription] = useState("");
  const loc = p.draft.location;
  return (
    <section id="new-incident-form" className="panel card" aria-labelledby="form-title">
      <header className="panel-head">
        <h2 id="form-title">{t(p.lang, "form.title")}</h2>
        <CloseButton label={t(p.lang, "form.cancel")} onClick={p.onCancel} />
      </header>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          p.onSubmit({
            incident_type: type,
            priority: priority === "" ? null : priority,
            location: loc ?? p.centre,
            address: p.draft.address.trim(),
            description: description.trim(),
          });
        }}
      >
        <label htmlFor="incident-address">{t(p.lang, "form.address")}</label>
        <PlaceSearch
          lang={p.lang}
          id="incident-address"
          value={p.draft.address}
          near={loc ?? p.centre}
          placeholder={t(p.lang, "form.addressHint")}
          autoFocus
          onChange={(text) => p.onDraft({ ...p.draft, address: text })}
          onPick={(h) => p.onDraft({ location: h.position, address: h.address })}
        />
        <p className="muted small" data-form-location>
          {t(p.lang, "form.location")}:{" "}
          {p.draft.describing ? t(p.lang, "form.describing") : loc ? formatLatLon(loc.lat, loc.lon) : t(p.lang, "form.locationCentre")}
        </p>
        <label htmlFor="incident-type">{t(p.lang, "form.type")}</label>
        <select id="incident-type" value={type} onChange={(e) => setType(e.target.value as IncidentType)}>
          {INCIDENT_TYPES.map((it) => (
            <option key={it} value={it}>
              {label.incidentType(p.lang, it)}
            </option>
          ))}
        </select>
        <label htmlFor="incident-priority">{t(p.lang, "form.priority")}</label>
        <select id="incident-priority" value={priority} onChange={(e) => setPriority(e.target.value as Priority | "")}>
          <option value="">{t(p.lang, "form.priorityDefault", { p: defaultPriority(type) })}</option>
          {PRIORITIES.map((pr) => (
            <option key={pr} value={pr}>
              {label.priority(p.lang, pr)}
            </option>
          ))}
        </select>
        <label htmlFor="incident-description">{t(p.lang, "form.description")}</label>
        <textarea id="incident-description" rows={3} maxLength={MAX_TEXT_CHARS} value={description} onChange={(e) => setDescription(e.target.value)} />
        <div className="row">
          <button type="submit" id="incident-submit" className="primary" disabled={p.busy || p.draft.describing}>
            {t(p.lang, "form.submit")}
          </button>
          <button type="button" onClick={p.onCancel}>
            {t(p.lang, "form.cancel")}
          </button>
        </div>
      </form>
    </section>
  );
}
