import { useEffect, useRef, useState } from "react";
import { usePermissions } from "../auth";
import { liftRoadClosure, type NewRoadClosure, type RoadClosureView, roadLine, setRoadClosure } from "../bindings";
import {
  canFinish,
  checkClosureForm,
  type ClosureForm,
  type Drawing,
  END_CHOICES,
  formatRemaining,
  isActiveNow,
  lineCollapsed,
  MAX_REASON_CHARS,
  REASON_PRESETS,
  sortClosures,
} from "../closures";
import { errorText } from "../errors";
import { formatDateTime } from "../format";
import { type Lang, t } from "../i18n";
import { CloseButton } from "./CloseButton";

export interface ClosuresPanelProps {
  lang: Lang;
  now: number;
  closures: RoadClosureView[];
  /** Why the list could not be read, if it could not. */
  loadError: string | null;
  /** The closure being drawn (shared with the map, which adds the clicks). */
  drawing: Drawing | null;
  onDrawing: (d: Drawing | null) => void;
  /** Called after a closure was set or lifted (the list is read again). */
  onChanged: () => void;
  onDismiss: () => void;
}

const EMPTY_FORM: ClosureForm = { reason: "", end: "3", at: "" };

function isTyping(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

/**
 * Road closures: the list (active first, lifted and expired ones greyed), lifting one, and
 * drawing a new one on the map (a road by clicks along it, snapped with roadLine, or an area)
 * followed by the reason and expected end.
 */
export function ClosuresPanel(p: ClosuresPanelProps) {
  const can = usePermissions();
  const [form, setForm] = useState<ClosureForm>(EMPTY_FORM);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirmLift, setConfirmLift] = useState<string | null>(null);
  const [liftError, setLiftError] = useState<string | null>(null);
  const d = p.drawing;
  const latest = useRef(p);
  latest.current = p;

  // After each click on a road, the backend snaps the clicks to the road line.
  const pointsKey = d && d.mode === "line" ? JSON.stringify(d.points) : "";
  useEffect(() => {
    const cur = latest.current.drawing;
    if (!cur || cur.mode !== "line" || cur.points.length < 2) return;
    const points = cur.points;
    let stale = false;
    roadLine({ points })
      .then((line) => {
        const now = latest.current.drawing;
        if (stale || !now || now.points !== points) return;
        setProblem(null);
        latest.current.onDrawing({ ...now, line });
      })
      .catch((e) => !stale && setProblem(errorText(e)));
    return () => {
      stale = true;
    };
  }, [pointsKey]);

  const start = (mode: Drawing["mode"]) => {
    setProblem(null);
    setForm(EMPTY_FORM);
    p.onDrawing({ mode, points: [], line: null, phase: "drawing" });
  };
  const cancel = () => {
    setProblem(null);
    p.onDrawing(null);
  };
  const finish = () => {
    if (d && d.phase === "drawing" && canFinish(d)) p.onDrawing({ ...d, phase: "form" });
  };
  const undo = () => {
    if (d && d.phase === "drawing") p.onDrawing({ ...d, points: d.points.slice(0, -1), line: null });
  };

  // Enter finishes, Esc cancels the drawing (before the console's Esc closes the panel).
  const finishRef = useRef(finish);
  finishRef.current = finish;
  const cancelRef = useRef(cancel);
  cancelRef.current = cancel;
  const drawingNow = d !== null;
  useEffect(() => {
    if (!drawingNow) return;
    const onKey = (e: KeyboardEvent) => {
      const cur = latest.current.drawing;
      if (!cur) return;
      if (e.key === "Escape") {
        e.stopPropagation();
        e.preventDefault();
        cancelRef.current();
      } else if (e.key === "Enter" && cur.phase === "drawing" && !isTyping(e.target)) {
        e.preventDefault();
        finishRef.current();
      }
    };
    window.addEventListener("keydown", onKey, true);
    return () => window.removeEventListener("keydown", onKey, true);
  }, [drawingNow]);

  const save = async () => {
    if (!d) return;
    const check = checkClosureForm(form, Date.now());
    if (!check.ok) {
      setProblem(t(p.lang, check.problem, { max: MAX_REASON_CHARS }));
      return;
    }
    if (!canFinish(d)) return;
    const shape: NewRoadClosure["shape"] = d.mode === "line" ? { type: "line", points: d.line ?? [] } : { type: "area", ring: d.points };
    setBusy(true);
    try {
      await setRoadClosure({ closure_id: null, shape, reason: check.reason, ends_at: check.endsAt });
      setProblem(null);
      setForm(EMPTY_FORM);
      p.onDrawing(null);
      p.onChanged();
    } catch (e) {
      // The drawing is kept: fix the form (or the drawing) and save again.
      setProblem(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  const lift = async (id: string) => {
    setBusy(true);
    try {
      await liftRoadClosure({ closure_id: id });
      setLiftError(null);
      setConfirmLift(null);
      p.onChanged();
    } catch (e) {
      setLiftError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  const sorted = sortClosures(p.closures, p.now);
  const reasonChars = [...form.reason.trim()].length;

  return (
    <section id="closures-panel" className="panel card" aria-labelledby="closures-title">
      <header className="panel-head">
        <h2 id="closures-title">{t(p.lang, "closure.title")}</h2>
        <CloseButton label={t(p.lang, "detail.closePanel")} onClick={p.onDismiss} />
      </header>

      {!d && can.closures && (
        <div className="closure-actions">
          <button type="button" id="closure-draw-line" className="primary" onClick={() => start("line")}>
            {t(p.lang, "closure.newLine")}
          </button>
          <button type="button" id="closure-draw-area" onClick={() => start("area")}>
            {t(p.lang, "closure.newArea")}
          </button>
        </div>
      )}

      {d && d.phase === "drawing" && (
        <div id="closure-drawing" className="closure-drawing" role="status">
          <p>{t(p.lang, d.mode === "line" ? "closure.drawLineHint" : "closure.drawAreaHint")}</p>
          <p className="small muted num" data-draw-count={d.points.length}>
            {t(p.lang, "closure.points", { n: d.points.length })}
            {d.mode === "line" && d.points.length >= 2 && d.line === null && !problem && <span> · {t(p.lang, "closure.snapping")}</span>}
          </p>
          <div className="closure-actions">
            <button type="button" id="closure-finish" className="primary" disabled={!canFinish(d)} onClick={finish}>
              {t(p.lang, "closure.finish")} <kbd>Enter</kbd>
            </button>
            <button type="button" id="closure-undo" disabled={d.points.length === 0} onClick={undo}>
              {t(p.lang, "closure.undo")}
            </button>
            <button type="button" id="closure-cancel" onClick={cancel}>
              {t(p.lang, "closure.cancel")} <kbd>Esc</kbd>
            </button>
          </div>
          {problem && (
            <p className="form-error" role="alert" id="closure-error">
              {problem}
            </p>
          )}
          {!problem && lineCollapsed(d) && (
            <p className="form-error" role="alert" id="closure-same-spot">
              {t(p.lang, "closure.sameSpot")}
            </p>
          )}
        </div>
      )}

      {d && d.phase === "form" && (
        <form
          id="closure-form"
          className="stack"
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
        >
          <p className="small muted">
            {t(p.lang, d.mode === "line" ? "closure.shapeLine" : "closure.shapeArea")} · {t(p.lang, "closure.points", { n: d.points.length })}
          </p>
          <label htmlFor="closure-reason">{t(p.lang, "closure.reason")}</label>
          <input
            id="closure-reason"
            value={form.reason}
            maxLength={MAX_REASON_CHARS * 2}
            autoFocus
            aria-required="true"
            aria-invalid={reasonChars > MAX_REASON_CHARS}
            onChange={(e) => setForm({ ...form, reason: e.target.value })}
          />
          <div className="closure-presets">
            {REASON_PRESETS.map((k) => (
              <button type="button" key={k} data-preset={k} className="chip" onClick={() => setForm({ ...form, reason: t(p.lang, k) })}>
                {t(p.lang, k)}
              </button>
            ))}
          </div>
          <span className={`small num ${reasonChars > MAX_REASON_CHARS ? "form-error" : "muted"}`}>
            {reasonChars} / {MAX_REASON_CHARS}
          </span>
          <label htmlFor="closure-end">{t(p.lang, "closure.end")}</label>
          <select id="closure-end" value={form.end} onChange={(e) => setForm({ ...form, end: e.target.value as ClosureForm["end"] })}>
            {END_CHOICES.map((c) => (
              <option key={c} value={c}>
                {t(p.lang, `closure.end.${c}`)}
              </option>
            ))}
          </select>
          {form.end === "at" && (
            <input
              id="closure-end-at"
              type="datetime-local"
              aria-label={t(p.lang, "closure.end.at")}
              value={form.at}
              onChange={(e) => setForm({ ...form, at: e.target.value })}
            />
          )}
          {problem && (
            <p className="form-error" role="alert" id="closure-error">
              {problem}
            </p>
          )}
          <div className="closure-actions">
            <button type="submit" id="closure-save" className="primary" disabled={busy}>
              {t(p.lang, "closure.save")}
            </button>
            <button type="button" onClick={() => p.onDrawing({ ...d, phase: "drawing" })}>
              {t(p.lang, "closure.back")}
            </button>
            <button type="button" onClick={cancel}>
              {t(p.lang, "closure.cancel")}
            </button>
          </div>
        </form>
      )}

      {p.loadError && (
        <p className="form-error" role="alert">
          {p.loadError}
        </p>
      )}
      {liftError && (
        <p className="form-error" role="alert" id="closure-lift-error">
          {liftError}
        </p>
      )}
      {sorted.length === 0 ? (
        <p className="muted">{t(p.lang, "closure.none")}</p>
      ) : (
        <ul className="closure-list">
          {sorted.map((v) => {
            const c = v.closure;
            const active = isActiveNow(v, p.now);
            const state = active ? "active" : c.lifted ? "lifted" : "expired";
            return (
              <li key={c.closure_id} data-closure-id={c.closure_id} data-closure-state={state} className={active ? "closure-row" : "closure-row closure-inactive"}>
                <div className="closure-reason">
                  <strong>{c.reason}</strong>{" "}
                  <span className="muted small">{t(p.lang, c.shape.type === "line" ? "closure.shapeLine" : "closure.shapeArea")}</span>
                </div>
                <div className="small muted">
                  {t(p.lang, "closure.setBy", { user: v.set_by, time: formatDateTime(v.set_at, p.lang) })}
                </div>
                <div className="small">
                  {active ? (
                    <span data-closure-remaining>
                      {formatRemaining(c.ends_at, p.now, p.lang)}
                      {c.ends_at && <span className="muted"> · {formatDateTime(c.ends_at, p.lang)}</span>}
                    </span>
                  ) : (
                    <span>{t(p.lang, c.lifted ? "closure.lifted" : "closure.expired")}</span>
                  )}
                  {" · "}
                  <span className="num" data-closure-segments>
                    {t(p.lang, "closure.segments", { n: v.closed_segments })}
                  </span>
                </div>
                {active &&
                  can.closures &&
                  (confirmLift === c.closure_id ? (
                    <div className="closure-actions">
                      <span>{t(p.lang, "closure.liftConfirm")}</span>
                      <button type="button" className="danger" data-lift-confirm disabled={busy} onClick={() => void lift(c.closure_id)}>
                        {t(p.lang, "closure.lift")}
                      </button>
                      <button type="button" onClick={() => setConfirmLift(null)}>
                        {t(p.lang, "closure.keep")}
                      </button>
                    </div>
                  ) : (
                    <button type="button" data-lift disabled={busy} onClick={() => setConfirmLift(c.closure_id)}>
                      {t(p.lang, "closure.lift")}
                    </button>
                  ))}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}

/** The toolbar count: closures that apply now. */
export function activeClosureCount(list: RoadClosureView[], nowMs: number): number {
  return list.filter((v) => isActiveNow(v, nowMs)).length;
}
