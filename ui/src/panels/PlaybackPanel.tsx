import { useEffect, useMemo, useRef, useState } from "react";
import type { ExportedTrack, LatLon, Track, TrackFormat, TrackQuery, UnitView } from "../bindings";
import { unitTrack } from "../bindings";
import { errorText } from "../errors";
import { formatAge, formatDateTime } from "../format";
import { type Lang, label, locale, t } from "../i18n";
import type { TrackOverlay } from "../map/features";
import {
  advance,
  fixTimes,
  fromLocalInput,
  PLAYBACK_SPEEDS,
  type PlaybackSpeed,
  sampleTrack,
  toLocalInput,
  TRACK_WINDOWS,
} from "../positions";
import { CloseButton } from "./CloseButton";
import { FixAge } from "./FixAge";

/** A preset window (seconds back from now) or `custom` (two times). */
type WindowChoice = (typeof TRACK_WINDOWS)[number] | "custom";

export interface PlaybackPanelProps {
  lang: Lang;
  now: number;
  units: UnitView[];
  /** The unit to start with (from its card), if any. */
  initialUnitId: string | null;
  staleAfterS: number;
  busy: boolean;
  /** Writes the track as GPX or KML; resolves with where, or undefined when refused (shown by the console). */
  onExport: (q: TrackQuery, format: TrackFormat) => Promise<ExportedTrack | undefined>;
  /** The line and playhead to draw (null: nothing). */
  onOverlay: (o: TrackOverlay | null) => void;
  /** Where the map should stay centred while following (null: not following). */
  onFollow: (at: LatLon | null) => void;
  onDismiss: () => void;
  /** The track reader (injectable for tests). */
  loadTrack?: (q: TrackQuery) => Promise<Track>;
}

/** Ms of real time between playback steps (10 a second is smooth enough on a map). */
export const PLAYBACK_STEP_MS = 100;

/** Local time of day with seconds, for the playhead's label. */
function timeOfDay(ms: number, lang: Lang): string {
  return new Date(ms).toLocaleTimeString(locale(lang), { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
}

/**
 * Track playback: pick a unit and a time window, then a slider over the fixes' times with
 * play/pause at 1×/10×/60×, following the unit on the map if asked, the track's line drawn on
 * the map, and GPX/KML export of the same window (the written file's path is shown).
 */
export function PlaybackPanel(p: PlaybackPanelProps) {
  const load = p.loadTrack ?? unitTrack;
  const [unitId, setUnitId] = useState(p.initialUnitId ?? "");
  const [win, setWin] = useState<WindowChoice>(3600);
  const [from, setFrom] = useState(() => toLocalInput(p.now - 3600_000));
  const [to, setTo] = useState(() => toLocalInput(p.now));
  const [query, setQuery] = useState<TrackQuery | null>(null);
  const [track, setTrack] = useState<Track | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [playhead, setPlayhead] = useState(0);
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState<PlaybackSpeed>(10);
  const [follow, setFollow] = useState(true);
  const [exported, setExported] = useState<ExportedTrack | null>(null);

  const nowRef = useRef(p.now);
  nowRef.current = p.now;

  /** The query the current choice stands for (preset windows end now). */
  const choiceQuery = (): TrackQuery | null => {
    if (!unitId) return null;
    if (win === "custom") {
      const f = fromLocalInput(from);
      const tt = fromLocalInput(to);
      return { unit_id: unitId, from: f === null ? null : new Date(f).toISOString(), to: tt === null ? null : new Date(tt).toISOString() };
    }
    return { unit_id: unitId, from: new Date(nowRef.current - win * 1000).toISOString(), to: null };
  };

  const runLoad = (q: TrackQuery | null) => {
    setPlaying(false);
    setExported(null);
    setQuery(q);
    if (!q) {
      setTrack(null);
      return () => {};
    }
    let stale = false;
    setLoading(true);
    setError(null);
    load(q)
      .then((tr) => {
        if (stale) return;
        setTrack(tr);
        const first = tr.points[0];
        setPlayhead(first ? Date.parse(first.fix_time) : 0);
      })
      .catch((e) => !stale && (setError(errorText(e)), setTrack(null)))
      .finally(() => !stale && setLoading(false));
    return () => {
      stale = true;
    };
  };

  // Presets load as soon as a unit and a window are chosen; a custom window waits for "Load".
  useEffect(() => {
    if (win === "custom") return;
    return runLoad(choiceQuery());
    // Only a new unit or preset reloads (not each tick of `now`, which the preset reads).
  }, [unitId, win]);

  const times = useMemo(() => (track ? fixTimes(track.points) : []), [track]);
  const start = times[0] ?? 0;
  const end = times[times.length - 1] ?? 0;
  const sample = track ? sampleTrack(track.points, times, playhead) : null;
  const shown = sample ? track?.points[sample.index] : undefined;

  // Playing: the playhead moves `speed` times real time and stops at the end.
  useEffect(() => {
    if (!playing) return;
    let last = performance.now();
    const id = setInterval(() => {
      const t0 = performance.now();
      const elapsed = t0 - last;
      last = t0;
      setPlayhead((ph) => {
        const next = advance(ph, elapsed, speed, end);
        if (next >= end) setPlaying(false);
        return next;
      });
    }, PLAYBACK_STEP_MS);
    return () => clearInterval(id);
  }, [playing, speed, end]);

  // The map: the line when the track changes, the playhead on every step.
  const line = useMemo(() => (track ? track.points.map((f) => f.position) : []), [track]);
  const headAt = sample?.at;
  const headKey = headAt ? `${headAt.lat},${headAt.lon},${Math.floor(playhead / 1000)}` : "";
  const { onOverlay, onFollow } = p;
  useEffect(() => {
    if (!track || line.length === 0 || !headAt) {
      onOverlay(track ? { line, head: null } : null);
      return;
    }
    onOverlay({ line, head: { at: headAt, label: `${track.callsign} ${timeOfDay(playhead, p.lang)}` } });
    // `headKey` stands for the playhead's position and second: a new overlay only when it moved.
  }, [line, headKey, p.lang]);
  useEffect(() => {
    onFollow(follow && headAt ? headAt : null);
  }, [follow, headKey]);
  // Closing the panel takes the track off the map.
  useEffect(
    () => () => {
      onOverlay(null);
      onFollow(null);
    },
    [onOverlay, onFollow],
  );

  const doExport = (format: TrackFormat) => {
    if (!query) return;
    setExported(null);
    void p.onExport(query, format).then((r) => r && setExported(r));
  };

  const hasPoints = !!track && track.points.length > 0;
  const unit = p.units.find((u) => u.id === unitId);
  return (
    <section id="playback-panel" className="panel card" aria-labelledby="playback-title" data-playing={playing}>
      <header className="panel-head">
        <h2 id="playback-title">{t(p.lang, "track.title")}</h2>
        <CloseButton label={t(p.lang, "track.close")} onClick={p.onDismiss} />
      </header>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          runLoad(choiceQuery());
        }}
      >
        <label htmlFor="track-unit">{t(p.lang, "track.unit")}</label>
        <select id="track-unit" value={unitId} onChange={(e) => setUnitId(e.target.value)}>
          <option value="">{t(p.lang, "track.pickUnit")}</option>
          {p.units.map((u) => (
            <option key={u.id} value={u.id}>
              {u.callsign} · {label.unitKind(p.lang, u.kind)}
            </option>
          ))}
        </select>
        <label htmlFor="track-window">{t(p.lang, "track.window")}</label>
        <select id="track-window" value={String(win)} onChange={(e) => setWin(e.target.value === "custom" ? "custom" : (Number(e.target.value) as WindowChoice))}>
          {TRACK_WINDOWS.map((w) => (
            <option key={w} value={w}>
              {t(p.lang, `track.win${w}`)}
            </option>
          ))}
          <option value="custom">{t(p.lang, "track.custom")}</option>
        </select>
        {win === "custom" && (
          <div className="row track-custom">
            <label htmlFor="track-from">{t(p.lang, "track.from")}</label>
            <input id="track-from" type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} />
            <label htmlFor="track-to">{t(p.lang, "track.to")}</label>
            <input id="track-to" type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} />
            <button type="submit" id="track-load" disabled={!unitId || loading}>
              {t(p.lang, "track.load")}
            </button>
          </div>
        )}
      </form>
      {loading && <p className="muted">{t(p.lang, "track.loading")}</p>}
      {error && (
        <p className="field-error" role="alert" id="track-error">
          {error}
        </p>
      )}
      {track && !loading && !hasPoints && (
        <p className="muted" id="track-empty">
          {t(p.lang, "track.empty", { callsign: track.callsign })}
        </p>
      )}
      {track && hasPoints && (
        <>
          <p className="small muted" id="track-summary" data-track-points={track.points.length}>
            {t(p.lang, "track.points", { n: track.points.length, from: formatDateTime(new Date(start).toISOString(), p.lang), to: formatDateTime(new Date(end).toISOString(), p.lang) })}
          </p>
          {track.truncated && (
            <p className="small field-error" id="track-truncated">
              {t(p.lang, "track.truncated")}
            </p>
          )}
          <div className="playback-controls">
            <button
              type="button"
              id="track-play"
              className="primary"
              onClick={() => {
                if (!playing && playhead >= end) setPlayhead(start);
                setPlaying(!playing);
              }}
              aria-pressed={playing}
            >
              {playing ? `❚❚ ${t(p.lang, "track.pause")}` : `▶ ${t(p.lang, "track.play")}`}
            </button>
            <span className="speed-buttons" role="group" aria-label={t(p.lang, "track.speed")}>
              {PLAYBACK_SPEEDS.map((s) => (
                <button key={s} type="button" data-speed={s} aria-pressed={speed === s} className={speed === s ? "on" : undefined} onClick={() => setSpeed(s)}>
                  {s}×
                </button>
              ))}
            </span>
            <label className="toggle">
              <input id="track-follow" type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} />
              {t(p.lang, "track.follow")}
            </label>
          </div>
          <input
            id="track-slider"
            className="track-slider"
            type="range"
            min={0}
            max={Math.max(0, Math.round((end - start) / 1000))}
            step={1}
            value={Math.round((playhead - start) / 1000)}
            aria-label={t(p.lang, "track.slider")}
            aria-valuetext={formatDateTime(new Date(playhead).toISOString(), p.lang)}
            onChange={(e) => setPlayhead(start + Number(e.target.value) * 1000)}
          />
          <dl className="fields">
            <dt>{t(p.lang, "track.at")}</dt>
            <dd className="num" id="track-playhead" data-playhead={new Date(playhead).toISOString()}>
              {formatDateTime(new Date(playhead).toISOString(), p.lang)}
            </dd>
            {shown && (
              <>
                <dt>{t(p.lang, "track.fixAt")}</dt>
                <dd id="track-fix" data-fix-time={shown.fix_time}>
                  <span className="num">{formatDateTime(shown.fix_time, p.lang)}</span> (<FixAge lang={p.lang} now={p.now} fix={shown} staleAfterS={p.staleAfterS} />)
                  <div className="small muted">
                    {t(p.lang, "track.fixGap", { age: formatAge((playhead - Date.parse(shown.fix_time)) / 1000, p.lang) })}
                    {shown.speed_mps != null && ` · ${Math.round(shown.speed_mps * 3.6)} km/h`}
                  </div>
                </dd>
              </>
            )}
          </dl>
          <h3>{t(p.lang, "track.export")}</h3>
          <div className="actions status-actions">
            {(["gpx", "kml"] as const).map((f) => (
              <button key={f} type="button" data-export={f} disabled={p.busy || !query} onClick={() => doExport(f)}>
                {f.toUpperCase()}
              </button>
            ))}
          </div>
          {exported && (
            <p className="export-result small" id="track-export-result" data-export-path={exported.path}>
              {t(p.lang, "track.exported", { n: exported.points })} <code>{exported.path}</code>
            </p>
          )}
        </>
      )}
      {!unit && !track && <p className="muted small">{t(p.lang, "track.pickUnit")}</p>}
    </section>
  );
}
