import { useCallback, useEffect, useRef, useState } from "react";
import type { ClosestUnits as ClosestUnitsView } from "../bindings";
import { closestRows, firstDispatchable, formatDistance, formatEta, formatKm, isDispatchKey, problemText, problemTitle, unavailableText } from "../dispatch";
import { type Lang, label, t } from "../i18n";
import { FixAge } from "./FixAge";

export interface ClosestUnitsProps {
  lang: Lang;
  /** The clock, ms (fix ages tick with it). */
  now: number;
  /** `Settings.stale_after_s`: colours the fix ages. */
  staleAfterS: number;
  /** The ranking for this incident, or null while it is computed. */
  closest: ClosestUnitsView | null;
  /** Another action is running (every dispatch button waits). */
  busy: boolean;
  /** Dispatches a unit to this incident (the panel's assign action); true once it is done. */
  onDispatch: (unitId: string) => Promise<boolean>;
}

/**
 * "最近可用单位 / Closest available units": the top five by road ETA with rank, callsign, ETA,
 * road distance, fix age and a dispatch button; then the units without an ETA and why (the
 * translated kind with the closure reasons or the distance to the road; the backend's English
 * detail as a tooltip); a note when closures were avoided. When routing is unavailable (no
 * pack, the incident off the roads) the reason is said once and the units are listed by
 * straight-line distance, still dispatchable.
 *
 * D (outside a text field) dispatches the first listed unit not yet dispatched from here;
 * while a dispatch runs every button and the key wait. A unit dispatched from here is marked
 * and skipped until the ranking refreshes, so a second D before the refresh dispatches the
 * NEXT unit (two quick presses send two units: deliberate, a commander often wants two).
 */
export function ClosestUnits({ lang, now, staleAfterS, closest, busy, onDispatch }: ClosestUnitsProps) {
  const [running, setRunning] = useState(false);
  const runningRef = useRef(false);
  // Units dispatched from this list; the next refresh drops them (they are no longer available).
  const [sent, setSent] = useState<ReadonlySet<string>>(new Set());
  const incidentId = closest?.incident_id ?? null;
  useEffect(() => setSent(new Set()), [incidentId]);

  const dispatch = useCallback(
    async (unitId: string) => {
      if (runningRef.current) return;
      runningRef.current = true;
      setRunning(true);
      try {
        if (await onDispatch(unitId)) setSent((s) => new Set(s).add(unitId));
      } finally {
        runningRef.current = false;
        setRunning(false);
      }
    },
    [onDispatch],
  );

  const state = useRef({ closest, sent, busy, dispatch });
  state.current = { closest, sent, busy, dispatch };
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!isDispatchKey(e)) return;
      const s = state.current;
      e.preventDefault();
      if (s.busy || runningRef.current) return;
      const first = firstDispatchable(s.closest, s.sent);
      if (first) void s.dispatch(first.unit_id);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const rows = closestRows(closest);
  const first = firstDispatchable(closest, sent);
  const disabled = busy || running;

  return (
    <section id="closest-units" className="closest-units" aria-labelledby="closest-title" data-closest-incident={incidentId ?? ""}>
      <h3 id="closest-title">{t(lang, "eta.title")}</h3>
      {closest === null && <p className="muted small">{t(lang, "eta.loading")}</p>}
      {closest?.unavailable != null && (
        <p className="muted small" id="closest-unavailable" title={closest.unavailable}>
          {unavailableText(lang, closest.unavailable)}
          {closest.candidates.length > 0 && (
            <>
              {" "}
              <span id="closest-by-straight">{t(lang, "eta.byStraight")}</span>
            </>
          )}
        </p>
      )}
      {closest && closest.closures_active > 0 && (
        <p className="closest-closures small" id="closest-closures">
          ⚠ {t(lang, "eta.closures", { n: closest.closures_active })}
        </p>
      )}
      {closest && rows.ranked.length === 0 && (closest.unavailable === null || closest.candidates.length === 0) && <p className="muted">{t(lang, "eta.none")}</p>}
      {rows.ranked.length > 0 && (
        <ol className="closest-list">
          {rows.ranked.map(({ rank, unit }) => {
            const isFirst = unit.unit_id === first?.unit_id;
            const done = sent.has(unit.unit_id);
            return (
              <li key={unit.unit_id} className={`closest-row${rank === 1 ? " first" : ""}`} data-closest-unit={unit.unit_id} data-rank={rank}>
                <span className="closest-rank num">{rank}</span>
                <strong className="closest-callsign">{unit.callsign}</strong>
                <span className="muted small">{label.unitKind(lang, unit.kind)}</span>
                {rows.by === "road" ? (
                  <>
                    <span className="closest-eta num" data-eta-s={unit.eta_s ?? ""} title={t(lang, "eta.eta")}>
                      {formatEta(unit.eta_s ?? 0, lang)}
                    </span>
                    <span className="closest-km num small" title={t(lang, "eta.road")}>
                      {t(lang, "detail.distanceKm", { km: formatKm(unit.distance_m ?? 0) })}
                    </span>
                  </>
                ) : (
                  <span className="closest-straight num" data-straight-m={unit.straight_m ?? ""} title={t(lang, "eta.byStraight")}>
                    {t(lang, "eta.straight", { dist: formatDistance(unit.straight_m ?? 0) })}
                  </span>
                )}
                <FixAge lang={lang} now={now} fix={unit.fix} staleAfterS={staleAfterS} className="small" />
                <button
                  type="button"
                  className={isFirst ? "primary" : undefined}
                  data-dispatch-unit={unit.unit_id}
                  disabled={disabled || done}
                  aria-keyshortcuts={isFirst ? "D" : undefined}
                  onClick={() => void dispatch(unit.unit_id)}
                >
                  {done ? t(lang, "eta.dispatched") : t(lang, "eta.dispatch")}
                  {isFirst && !done && (
                    <>
                      {" "}
                      <kbd>D</kbd>
                    </>
                  )}
                </button>
              </li>
            );
          })}
        </ol>
      )}
      {rows.more > 0 && <p className="muted small">{t(lang, "eta.more", { n: rows.more })}</p>}
      {rows.problems.length > 0 && (
        <>
          <h4 className="small muted">{t(lang, "eta.problems")}</h4>
          <ul className="closest-problems">
            {rows.problems.map((u) => (
              <li key={u.unit_id} data-problem-unit={u.unit_id} data-problem={u.problem ?? ""}>
                <strong>{u.callsign}</strong>{" "}
                {u.problem && (
                  <span className="closest-problem" title={problemTitle(u.problem_detail)}>
                    {problemText(lang, u.problem, u.problem_detail)}
                  </span>
                )}{" "}
                {u.fix && <FixAge lang={lang} now={now} fix={u.fix} staleAfterS={staleAfterS} className="small" />}
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
