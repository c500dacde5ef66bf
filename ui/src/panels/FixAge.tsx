import type { Fix } from "../bindings";
import { formatAge, formatDateTime } from "../format";
import { type Lang, t } from "../i18n";
import { ageTone, fixAge } from "../positions";

export interface FixAgeProps {
  lang: Lang;
  now: number;
  fix: Fix | null | undefined;
  /** `Settings.stale_after_s`. */
  staleAfterS: number;
  className?: string;
}

/**
 * A position's age ("12 秒", "3 min") coloured by freshness against the stale threshold; the
 * fix time in the tooltip. `data-stale` is set only when stale (or without a fix), as the
 * board's stale tag always was.
 */
export function FixAge({ lang, now, fix, staleAfterS, className }: FixAgeProps) {
  const age = fixAge(fix, now);
  const tone = ageTone(age, staleAfterS);
  const stale = tone === "stale" || tone === "none";
  const text = age === null ? t(lang, "age.none") : formatAge(age, lang);
  const title =
    age === null || !fix
      ? t(lang, "board.noFix")
      : `${t(lang, "age.title", { time: formatDateTime(fix.fix_time, lang), age: formatAge(age, lang) })}${tone === "stale" ? ` · ${t(lang, "board.stale")}` : ""}`;
  return (
    <span
      className={`fix-age age-${tone}${className ? ` ${className}` : ""}`}
      data-fix-age={age === null ? "" : Math.round(age)}
      data-age-tone={tone}
      data-stale={stale ? "" : undefined}
      title={title}
    >
      {text}
    </span>
  );
}
