import type { Facility, UnitView } from "../bindings";
import { formatClock, secondsSince } from "../format";
import { type Lang, label, t } from "../i18n";
import { facilityName } from "../map/features";
import { FixAge } from "./FixAge";

export interface UnitBoardProps {
  lang: Lang;
  now: number;
  units: UnitView[];
  facilities: Facility[];
  staleAfterS: number;
  selectedId: string | null;
  onOpenUnit: (id: string) => void;
  onOpenIncident: (id: string) => void;
  /** Units with an open sync conflict (a double assignment): marked in their row. */
  conflicted?: ReadonlySet<string>;
}

/** The unit status board: callsign with its fix age, type, home station, status, time in status, incident. */
export function UnitBoard(p: UnitBoardProps) {
  const homes = new Map(p.facilities.map((f) => [f.id, f]));
  return (
    <section className="panel board" aria-labelledby="board-title">
      <header className="panel-head">
        <h2 id="board-title">{t(p.lang, "board.title")}</h2>
      </header>
      <div className="board-scroll">
        <table className="board-table">
          <colgroup>
            <col className="c-callsign" />
            <col />
            <col className="c-status" />
            <col className="c-time" />
            <col className="c-incident" />
          </colgroup>
          <thead>
            <tr>
              <th>{t(p.lang, "board.callsign")}</th>
              <th>
                {t(p.lang, "board.kind")} / {t(p.lang, "board.home")}
              </th>
              <th>{t(p.lang, "board.status")}</th>
              <th>{t(p.lang, "board.inStatus")}</th>
              <th>{t(p.lang, "board.incident")}</th>
            </tr>
          </thead>
          <tbody>
            {p.units.map((u) => {
              const home = u.home_station ? homes.get(u.home_station) : undefined;
              const homeName = home ? facilityName(home, p.lang) : (u.home_station ?? "—");
              return (
                <tr key={u.id} data-unit-id={u.id} className={u.id === p.selectedId ? "selected" : undefined}>
                  <td>
                    <button type="button" className="link callsign" onClick={() => p.onOpenUnit(u.id)}>
                      {u.callsign}
                    </button>
                    {p.conflicted?.has(u.id) && (
                      <span className="conflict-mark" data-conflict-mark title={t(p.lang, "conflict.markTitle")}>
                        {t(p.lang, "conflict.mark")}
                      </span>
                    )}
                    <FixAge lang={p.lang} now={p.now} fix={u.fix} staleAfterS={p.staleAfterS} className="board-age" />
                  </td>
                  <td className="kind-home">
                    {label.unitKind(p.lang, u.kind)}
                    <span className="muted small" title={homeName}>
                      {homeName}
                    </span>
                  </td>
                  <td>
                    <span className={`ustatus ustatus-${u.status}`} data-unit-status={u.status}>
                      {label.unitStatus(p.lang, u.status)}
                    </span>
                  </td>
                  <td className="num" data-time-in-status>
                    {formatClock(secondsSince(u.status_since, p.now))}
                  </td>
                  <td>
                    {u.incident_id ? (
                      <button type="button" className="link" onClick={() => p.onOpenIncident(u.incident_id as string)}>
                        #{u.incident_number ?? u.incident_id}
                      </button>
                    ) : (
                      "—"
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}
