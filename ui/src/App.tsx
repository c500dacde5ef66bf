import { useEffect, useState } from "react";
import { type Startup, startup } from "./bindings";
import { Console } from "./Console";
import { errorText } from "./errors";
import { FieldConsole } from "./FieldConsole";
import { resolveLang, t } from "./i18n";
import { PackErrorScreen } from "./panels/PackErrorScreen";

/** Start-up: ask the backend, then the console or the error screen. */
export function App() {
  const [result, setResult] = useState<Startup | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  useEffect(() => {
    startup()
      .then(setResult)
      .catch((e) => setFailure(errorText(e)));
  }, []);
  const lang =
    result?.state === "ready" ? resolveLang(result.init.settings.language, navigator.language) : resolveLang("auto", navigator.language);
  if (failure) {
    return (
      <main className="fatal" role="alert" id="startup-error">
        <h1>{t(lang, "app.startupFailed")}</h1>
        <p>{failure}</p>
      </main>
    );
  }
  if (!result) return <main className="loading">{t(lang, "app.loading")}</main>;
  if (result.state === "pack_error") return <PackErrorScreen lang={lang} problem={result.problem} />;
  // Field laptop mode (`outpost --unit CALLSIGN`): the console is that unit.
  if (result.init.field_unit) return <FieldConsole init={result.init} />;
  return <Console init={result.init} />;
}
