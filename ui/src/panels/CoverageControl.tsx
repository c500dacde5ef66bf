import type { CoverageView } from "../bindings";
import { coveragePercents, routingWhy } from "../dispatch";
import { type Lang, t } from "../i18n";
import { BAND_COLOURS } from "../map/coverage";

export interface CoverageControlProps {
  lang: Lang;
  /** The layer is shown. */
  on: boolean;
  onToggle: (on: boolean) => void;
  /** The newest coverage (null while the first one is computed or the layer is off). */
  coverage: CoverageView | null;
}

const BAND_KEYS = ["cov.band0", "cov.band1", "cov.band2", "cov.band3"] as const;

/**
 * The map's "覆盖 1-3-5 / Coverage 1-3-5" toggle and, while on, the live figure (the share of
 * the road network AVAILABLE UNITS reach within 3 minutes, large; 1 and 5 minutes smaller; 0
 * when none is available), the layer's 3-minute share with stations and posts (smaller), the
 * sources counted and the legend of the four bands the layer draws.
 */
export function CoverageControl({ lang, on, onToggle, coverage }: CoverageControlProps) {
  const pct = coveragePercents(coverage);
  const layerPct = coveragePercents(coverage, "with_facilities");
  return (
    <div className="coverage-control" id="coverage-control" data-coverage-on={on ? "true" : "false"}>
      <button type="button" id="coverage-toggle" aria-pressed={on} className={on ? "on" : undefined} title={t(lang, "cov.title")} onClick={() => onToggle(!on)}>
        {t(lang, "cov.toggle")}
      </button>
      {on && (
        <div className="coverage-body">
          {coverage === null && <p className="muted small">{t(lang, "cov.loading")}</p>}
          {coverage?.unavailable != null && (
            <p className="muted small" id="coverage-unavailable" title={coverage.unavailable}>
              {t(lang, "cov.unavailable", { reason: routingWhy(lang, coverage.unavailable) })}
            </p>
          )}
          {pct && coverage && (
            <>
              <div className="coverage-figure" id="coverage-figure" data-share3={pct[1]} title={t(lang, "cov.figureBy")}>
                {t(lang, "cov.share3", { pct: pct[1] })}
              </div>
              <div className="coverage-minor small num" id="coverage-minor" data-share1={pct[0]} data-share5={pct[2]}>
                {t(lang, "cov.share1", { pct: pct[0] })} · {t(lang, "cov.share5", { pct: pct[2] })}
              </div>
              <div className="coverage-by small muted" id="coverage-by">
                {t(lang, "cov.figureBy")}
              </div>
              {layerPct && (
                <div className="coverage-layer small muted num" id="coverage-layer" data-share3={layerPct[1]}>
                  {t(lang, "cov.withFacilities", { pct: layerPct[1] })}
                </div>
              )}
              <div className="coverage-sources small muted">
                {t(lang, "cov.sources", { facilities: coverage.facilities, units: coverage.units, closures: coverage.closures_active })}
              </div>
            </>
          )}
          <p className="coverage-legend-title small muted" id="coverage-legend-title">
            {t(lang, "cov.legend")}
          </p>
          <ul className="coverage-legend small" aria-labelledby="coverage-legend-title">
            {BAND_KEYS.map((k, band) => (
              <li key={k} data-band={band}>
                <span className={`swatch band-${band}`} data-colour={BAND_COLOURS[band]} />
                {t(lang, k)}
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}
