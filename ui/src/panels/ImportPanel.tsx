import { useState } from "react";
import { type Datum, type ImportFormat, type ImportReport, importFacilities } from "../bindings";
import { errorText } from "../errors";
import { type Lang, label, t } from "../i18n";
import { decodeImportBytes, type ImportEncoding } from "../importText";
import { CloseButton } from "./CloseButton";

export interface ImportPanelProps {
  lang: Lang;
  /** Called after facilities were written (the state is read again). */
  onImported: () => void;
  onDismiss: () => void;
}

/** The datums a file may declare, in the order offered. */
export const DATUMS: Datum[] = ["wgs84", "gcj02", "bd09"];

/** The format a file name suggests: `.csv` → CSV, `.geojson`/`.json` → GeoJSON, else null. */
export function formatFromName(name: string): ImportFormat | null {
  const n = name.toLowerCase();
  if (n.endsWith(".csv")) return "csv";
  if (n.endsWith(".geojson") || n.endsWith(".json")) return "geojson";
  return null;
}

/**
 * Reads a chosen file's bytes and decodes them: UTF-8, else GB18030/GBK (Excel's "CSV" on
 * Chinese Windows), see decodeImportBytes.
 */
function readText(file: File): Promise<{ text: string; encoding: ImportEncoding }> {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(decodeImportBytes(r.result instanceof ArrayBuffer ? r.result : new ArrayBuffer(0)));
    r.onerror = () => reject(r.error ?? new Error(`could not read ${file.name}`));
    r.readAsArrayBuffer(file);
  });
}

/**
 * Imports stations, posts and checkpoints from a CSV or GeoJSON file in a declared datum:
 * a preview (importFacilities with commit false) lists each facility in WGS-84 and every
 * problem; the import (commit true) is offered only when there is none.
 */
export function ImportPanel(p: ImportPanelProps) {
  const [file, setFile] = useState<{ name: string; text: string; encoding: ImportEncoding } | null>(null);
  const [format, setFormat] = useState<ImportFormat>("csv");
  const [datum, setDatum] = useState<Datum>("wgs84");
  const [report, setReport] = useState<ImportReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  // Any change makes the preview stale.
  const changed = () => {
    setReport(null);
    setDone(null);
    setError(null);
  };

  const run = async (commit: boolean) => {
    if (!file) return;
    setBusy(true);
    try {
      const r = await importFacilities({ text: file.text, format, datum, commit });
      setError(null);
      if (commit) {
        if (r.problems.length === 0 && r.written > 0) {
          setDone(t(p.lang, "import.done", { n: r.written }));
          setReport(null);
          p.onImported();
        } else if (r.problems.length === 0 && r.facilities.length > 0) {
          // Every facility is already stored exactly so (the backend writes only new or
          // changed ones): say so rather than staying on the preview.
          setDone(t(p.lang, "import.unchanged", { n: r.facilities.length }));
          setReport(null);
        } else setReport(r);
      } else {
        setDone(null);
        setReport(r);
      }
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  const canImport = report !== null && report.problems.length === 0 && report.facilities.length > 0;

  return (
    <section id="import-panel" className="panel card" aria-labelledby="import-title">
      <header className="panel-head">
        <h2 id="import-title">{t(p.lang, "import.title")}</h2>
        <CloseButton label={t(p.lang, "detail.closePanel")} onClick={p.onDismiss} />
      </header>
      <div className="stack">
        <label htmlFor="import-file">{t(p.lang, "import.file")}</label>
        <input
          id="import-file"
          type="file"
          accept=".csv,.geojson,.json,text/csv,application/geo+json,application/json"
          onChange={(e) => {
            const f = e.target.files?.[0];
            changed();
            if (!f) {
              setFile(null);
              return;
            }
            const guess = formatFromName(f.name);
            if (guess) setFormat(guess);
            readText(f)
              .then((d) => setFile({ name: f.name, ...d }))
              .catch((err) => setError(errorText(err)));
          }}
        />
        {file && (
          <p className="small" id="import-file-name">
            {t(p.lang, "import.fileRead", { name: file.name, n: file.text.length })}
          </p>
        )}
        {file?.encoding === "gb18030" && (
          <p className="small import-encoding" id="import-encoding">
            {t(p.lang, "import.gb18030")}
          </p>
        )}
        <p className="small muted">{t(p.lang, "import.columns")}</p>
        <label htmlFor="import-format">{t(p.lang, "import.format")}</label>
        <select
          id="import-format"
          value={format}
          onChange={(e) => {
            setFormat(e.target.value as ImportFormat);
            changed();
          }}
        >
          <option value="csv">CSV</option>
          <option value="geojson">GeoJSON</option>
        </select>
        <fieldset className="import-datum" id="import-datum">
          <legend>{t(p.lang, "import.datum")}</legend>
          {DATUMS.map((d) => (
            <label key={d} className="datum-choice">
              <input
                type="radio"
                name="import-datum"
                value={d}
                checked={datum === d}
                onChange={() => {
                  setDatum(d);
                  changed();
                }}
              />{" "}
              {t(p.lang, `import.datum.${d}`)}
            </label>
          ))}
          <p className="small muted">{t(p.lang, "import.datumHint")}</p>
        </fieldset>
        <button type="button" id="import-preview" disabled={!file || busy} onClick={() => void run(false)}>
          {t(p.lang, "import.preview")}
        </button>
      </div>
      {error && (
        <p className="form-error" role="alert" id="import-error">
          {error}
        </p>
      )}
      {done && (
        <p className="import-done" role="status" id="import-done">
          {done}
        </p>
      )}
      {report && (
        <div className="import-report">
          {report.problems.length > 0 && (
            <div className="import-problems" role="alert" id="import-problems">
              <strong>{t(p.lang, "import.problems", { n: report.problems.length })}</strong>
              <ul>
                {report.problems.map((pr, i) => (
                  <li key={i} data-import-problem={pr.at}>
                    <span className="problem-at">{pr.at}</span>: {pr.message}
                  </li>
                ))}
              </ul>
            </div>
          )}
          {report.warnings.length > 0 && (
            <div className="import-warnings" role="status" id="import-warnings">
              <strong>{t(p.lang, "import.warnings", { n: report.warnings.length })}</strong>
              <ul>
                {report.warnings.map((w, i) => (
                  <li key={i} data-import-warning={w.at}>
                    <span className="problem-at">{w.at}</span>: {w.message}
                  </li>
                ))}
              </ul>
            </div>
          )}
          <p className="small muted">{t(p.lang, "import.read", { n: report.facilities.length })}</p>
          {report.facilities.length > 0 && (
            <table className="board-table import-table" id="import-table">
              <thead>
                <tr>
                  <th>{t(p.lang, "import.col.id")}</th>
                  <th>{t(p.lang, "import.col.kind")}</th>
                  <th>{t(p.lang, "import.col.name")}</th>
                  <th>{t(p.lang, "import.col.lat")}</th>
                  <th>{t(p.lang, "import.col.lon")}</th>
                </tr>
              </thead>
              <tbody>
                {report.facilities.map((f) => (
                  <tr key={f.id} data-import-facility={f.id}>
                    <td>{f.id}</td>
                    <td>{label.facilityKind(p.lang, f.kind)}</td>
                    <td title={`${f.name_zh} / ${f.name_en}`}>
                      {f.name_zh}
                      {f.name_zh && f.name_en ? " / " : ""}
                      {f.name_en}
                    </td>
                    <td className="num" data-lat>
                      {f.position.lat.toFixed(6)}
                    </td>
                    <td className="num" data-lon>
                      {f.position.lon.toFixed(6)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {canImport && (
            <button type="button" id="import-commit" className="primary" disabled={busy} onClick={() => void run(true)}>
              {t(p.lang, "import.commit", { n: report.facilities.length })}
            </button>
          )}
        </div>
      )}
    </section>
  );
}
