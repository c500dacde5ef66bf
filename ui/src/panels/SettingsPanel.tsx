import { useState } from "react";
import { type Language, type Settings, STALE_AFTER_S_MAX, STALE_AFTER_S_MIN, type Theme } from "../bindings";
import { type Lang, t } from "../i18n";
import { parseServerUrl } from "../sync";
import { CloseButton } from "./CloseButton";

export interface SettingsPanelProps {
  lang: Lang;
  settings: Settings;
  busy: boolean;
  onSave: (s: Settings) => void;
  onDismiss: () => void;
  /** The server URL the sync engine uses now (`SyncStatus.server_url`), when known. */
  activeServerUrl?: string | null;
}

const LANGUAGES: Language[] = ["auto", "zh_cn", "en"];
const THEMES: Theme[] = ["auto", "day", "night"];

/** Language, theme, the stale-fix threshold and the sync server, saved with saveSettings. */
export function SettingsPanel(p: SettingsPanelProps) {
  const [s, setS] = useState<Settings>(p.settings);
  const [server, setServer] = useState(p.settings.server_url ?? "");
  const serverUrl = parseServerUrl(server);
  const serverInvalid = serverUrl === undefined;
  return (
    <section id="settings-panel" className="panel card" aria-labelledby="settings-title">
      <header className="panel-head">
        <h2 id="settings-title">{t(p.lang, "settings.title")}</h2>
        <CloseButton label={t(p.lang, "detail.closePanel")} onClick={p.onDismiss} />
      </header>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          if (serverUrl !== undefined) p.onSave({ ...s, server_url: serverUrl });
        }}
      >
        <label htmlFor="settings-language">{t(p.lang, "settings.language")}</label>
        <select id="settings-language" value={s.language} onChange={(e) => setS({ ...s, language: e.target.value as Language })}>
          {LANGUAGES.map((l) => (
            <option key={l} value={l}>
              {t(p.lang, `lang.${l}`)}
            </option>
          ))}
        </select>
        <label htmlFor="settings-theme">{t(p.lang, "settings.theme")}</label>
        <select id="settings-theme" value={s.theme} onChange={(e) => setS({ ...s, theme: e.target.value as Theme })}>
          {THEMES.map((th) => (
            <option key={th} value={th}>
              {t(p.lang, `theme.${th}`)}
            </option>
          ))}
        </select>
        <label htmlFor="settings-stale">{t(p.lang, "settings.stale")}</label>
        <input
          id="settings-stale"
          type="number"
          min={STALE_AFTER_S_MIN}
          max={STALE_AFTER_S_MAX}
          step={10}
          value={s.stale_after_s}
          onChange={(e) => setS({ ...s, stale_after_s: Number(e.target.value) })}
        />
        <label htmlFor="settings-server-url">{t(p.lang, "settings.server")}</label>
        <input
          id="settings-server-url"
          type="text"
          inputMode="url"
          spellCheck={false}
          autoComplete="off"
          placeholder="http://10.0.0.2:8443"
          value={server}
          aria-invalid={serverInvalid}
          aria-describedby="settings-server-url-help"
          onChange={(e) => setServer(e.target.value)}
        />
        <span id="settings-server-url-help" className={`small ${serverInvalid ? "field-error" : "muted"}`} data-invalid={serverInvalid}>
          {t(p.lang, serverInvalid ? "settings.serverInvalid" : "settings.serverHint")}
        </span>
        {p.activeServerUrl && p.activeServerUrl !== (p.settings.server_url ?? null) && (
          <span id="settings-server-override" className="small muted">
            {t(p.lang, "settings.serverOverride", { url: p.activeServerUrl })}
          </span>
        )}
        <button type="submit" id="settings-save" className="primary" disabled={p.busy || serverInvalid}>
          {t(p.lang, "settings.save")}
        </button>
      </form>
    </section>
  );
}
