import type { PackProblem } from "../bindings";
import { type Lang, t } from "../i18n";

/** The full-screen error when the area pack is missing or broken: the file, the problem, the fix. */
export function PackErrorScreen({ lang, problem }: { lang: Lang; problem: PackProblem }) {
  return (
    <main id="pack-error" className="fatal" role="alert">
      <h1>{t(lang, "error.pack.title")}</h1>
      <dl>
        <dt>{t(lang, "error.pack.file")}</dt>
        <dd>
          <code data-pack-path>{problem.path}</code>
        </dd>
        <dt>{t(lang, "error.pack.problem")}</dt>
        <dd data-pack-problem>{problem.problem}</dd>
        <dt>{t(lang, "error.pack.hint")}</dt>
        <dd data-pack-hint>{problem.hint}</dd>
      </dl>
    </main>
  );
}
