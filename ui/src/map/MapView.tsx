import * as maplibregl from "maplibre-gl";
import "maplibre-gl/dist/maplibre-gl.css";
import { useEffect, useRef } from "react";
import type { ConsoleInit, ConsoleState, CoverageView, LatLon } from "../bindings";
import type { Lang } from "../i18n";
import { t } from "../i18n";
import { fixAge } from "../positions";
import { formatAge } from "../format";
import { label } from "../i18n";
import { facilityFeatures, incidentFeatures, type TrackOverlay, trackHeadFeatures, trackLineFeatures } from "./features";
import { headingArrowImage } from "./heading";
// Road closures (issue 5, helper F): active closures, the closure being drawn, the search marker.
import { attachClosureLayers, type ClosureLayerInput, type ClosureLayers, drawingTakesClicks } from "./closures";
// Dispatch intelligence (issue 5): routes of the closest units, 1-3-5 coverage.
import { addCoverageLayers, setCoverage } from "./coverage";
import { addRouteLayers, type RouteLine, setRoutes } from "./routes";
// The unit layer at scale (issue 7): diff updates, one per frame, clustering with many units.
import { UNIT_WRITE_INTERVAL_MS, UnitLayer, type UnitLayerMode } from "./units";
import {
  assetUrls,
  buildStyle,
  CJK_FONT_FAMILY,
  CLICKABLE_LAYERS,
  HEADING_IMAGE,
  LAYERS,
  type MapTheme,
  SOURCES,
} from "./style";

/** Where to move the map: `seq` changes for each request; the zoom is raised to `minZoom`. */
export type FlyTarget = { at: LatLon; seq: number; minZoom?: number };

/** What a click on the map selected. */
export type MapSelection = { kind: "unit" | "incident" | "facility"; id: string };

/** The e2e hook (TAURI.md): the map and whether the style loaded and units are drawn. */
export interface OutpostHook {
  map: maplibregl.Map;
  ready: boolean;
}

declare global {
  interface Window {
    __outpost?: OutpostHook;
  }
}

export interface MapViewProps {
  init: ConsoleInit;
  theme: MapTheme;
  lang: Lang;
  state: ConsoleState | null;
  staleAfterS: number;
  selected: MapSelection | null;
  showClosed: boolean;
  /** Where a new incident is being placed (drawn as a marker). */
  draft: LatLon | null;
  /** Changes of `seq` fly the map to `at`. */
  flyTo: FlyTarget | null;
  onSelect: (s: MapSelection) => void;
  onContextMenu: (at: LatLon) => void;
  onCentreChange?: (at: LatLon) => void;
  /** A track being played back (line and playhead), or nothing. */
  track?: TrackOverlay | null;
  /** While set, the map is kept centred here (follow a unit); each change moves it at once. */
  follow?: LatLon | null;
  /** A marked point (an unbound device's last fix), drawn as a grey pin. */
  pin?: LatLon | null;
  /** The user started dragging the map (a follow should let go). */
  onUserPan?: () => void;
  /** Road closures to draw and the closure being drawn (its clicks go to `onDrawClick`). */
  closures?: ClosureLayerInput;
  /** A picked search hit, marked until the next search. */
  searchMark?: LatLon | null;
  /** Routes to draw (the selected incident's closest units, or the field unit's route). */
  routes?: RouteLine[] | null;
  /** The 1-3-5 coverage layer's data, or null when the layer is off. */
  coverage?: CoverageView | null;
  /** Controls drawn over the map (absolutely positioned by their own CSS). */
  children?: React.ReactNode;
  /**
   * How unit positions reach the map: "diff" (the console) or "naive" (the whole source
   * replaced on each state change: the benchmark's baseline, bench/map.sh). Read once.
   */
  unitUpdateMode?: UnitLayerMode;
  /** Least ms between two writes of the unit source (default UNIT_WRITE_INTERVAL_MS). Read once. */
  unitWriteIntervalMs?: number;
}

function setSource(map: maplibregl.Map, id: string, data: object): void {
  const src = map.getSource(id) as maplibregl.GeoJSONSource | undefined;
  void src?.setData(data as Parameters<maplibregl.GeoJSONSource["setData"]>[0]);
}

/**
 * setData only when the data differs from what was last sent to this source of this style
 * (`sent`, by source id): state arrives many times a second with many units reporting, and each
 * setData rebuilds the source's tiles and repaints the map.
 */
function setSourceIfChanged(map: maplibregl.Map, sent: Map<string, string>, id: string, data: object): void {
  const json = JSON.stringify(data);
  if (sent.get(id) === json) return;
  sent.set(id, json);
  setSource(map, id, data);
}

export function MapView(props: MapViewProps) {
  const container = useRef<HTMLDivElement>(null);
  const mapRef = useRef<maplibregl.Map | null>(null);
  const styleReady = useRef(false);
  const latest = useRef(props);
  latest.current = props;
  const styleKey = `${props.theme}|${props.lang}`;
  const appliedStyleKey = useRef(styleKey);
  const marker = useRef<maplibregl.Marker | null>(null);

  const unitLayer = useRef<UnitLayer | null>(null);
  // What facilities and incidents last got (cleared with each new style).
  const sent = useRef(new Map<string, string>());
  // Pushes the overlay data into the sources: facilities and incidents are a few dozen points;
  // units go through the unit layer (a diff, at most once per frame).
  const push = () => {
    const map = mapRef.current;
    const p = latest.current;
    if (!map || !styleReady.current || !p.state) return false;
    const now = Date.now();
    const sel = p.selected;
    setSourceIfChanged(map, sent.current, SOURCES.facilities, facilityFeatures(p.state.facilities, p.lang));
    setSourceIfChanged(
      map,
      sent.current,
      SOURCES.incidents,
      incidentFeatures(p.state.incidents, p.lang, sel?.kind === "incident" ? sel.id : null, p.showClosed),
    );
    unitLayer.current?.update({
      units: p.state.units,
      nowMs: now,
      staleAfterS: p.staleAfterS,
      lang: p.lang,
      selectedId: sel?.kind === "unit" ? sel.id : null,
    });
    return true;
  };
  // The track's line (up to 20 000 fixes) only when it changes; the playhead on every step.
  const pushTrackLine = () => {
    const map = mapRef.current;
    if (!map || !styleReady.current) return;
    setSource(map, SOURCES.track, trackLineFeatures(latest.current.track?.line ?? []));
  };
  const pushTrackHead = () => {
    const map = mapRef.current;
    if (!map || !styleReady.current) return;
    setSource(map, SOURCES.trackHead, trackHeadFeatures(latest.current.track?.head ?? null));
  };
  const pin = useRef<maplibregl.Marker | null>(null);
  const closureLayers = useRef<ClosureLayers | null>(null);
  const searchMarker = useRef<maplibregl.Marker | null>(null);

  // Create the map once.
  useEffect(() => {
    if (!container.current) return;
    const p = latest.current;
    const urls = assetUrls(window.location.href, p.init.map_base_url);
    const style = buildStyle({
      theme: p.theme,
      lang: p.lang,
      ...urls,
      attribution: p.init.pack.attribution,
      minZoom: p.init.pack.min_zoom,
      maxZoom: p.init.pack.max_zoom,
    });
    const map = new maplibregl.Map({
      container: container.current,
      style,
      center: [p.init.pack.center.lon, p.init.pack.center.lat],
      zoom: p.init.pack.zoom,
      maxZoom: 19,
      attributionControl: { compact: false },
      localIdeographFontFamily: CJK_FONT_FAMILY,
      // Keep the rendered canvas readable for screenshots and the e2e check.
      canvasContextAttributes: { preserveDrawingBuffer: true },
      // Labels appear at once instead of fading in: a fade repaints the whole map for 300 ms,
      // and with software rendering and many units reporting that is most of the frames.
      fadeDuration: 0,
    });
    mapRef.current = map;
    unitLayer.current = new UnitLayer(map, p.unitUpdateMode ?? "diff", p.unitWriteIntervalMs ?? UNIT_WRITE_INTERVAL_MS);
    const hook: OutpostHook = { map, ready: false };
    window.__outpost = hook;
    map.addControl(new maplibregl.NavigationControl({ showCompass: true }), "top-right");
    map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");

    const addImages = () => {
      if (!map.hasImage(HEADING_IMAGE)) map.addImage(HEADING_IMAGE, headingArrowImage(), { sdf: true, pixelRatio: 1 });
    };
    closureLayers.current = attachClosureLayers(map, () => latest.current.closures, () => latest.current.lang);
    map.on("styleimagemissing", (e: { id: string }) => {
      if (e.id === HEADING_IMAGE) addImages();
    });
    map.on("style.load", () => {
      addImages();
      styleReady.current = true;
      sent.current.clear();
      unitLayer.current?.styleLoaded();
      push();
      pushTrackLine();
      pushTrackHead();
      // Routes and coverage: their layers are not in the built style; add them to each new one.
      addCoverageLayers(map);
      addRouteLayers(map, latest.current.theme);
      setCoverage(map, latest.current.coverage ?? null, true);
      setRoutes(map, latest.current.routes ?? [], true);
    });
    // Ready for e2e once every unit with a fix is drawn. Not `idle`: the P1 pulse repaints
    // continuously, so the map may never go idle.
    const checkReady = () => {
      const p = latest.current;
      if (hook.ready || !styleReady.current || !p.state || !map.getLayer(LAYERS.units)) return;
      // Units outside the view cannot be drawn; count only those inside it.
      const b = map.getBounds();
      const want = p.state.units.filter((u) => u.fix && b.contains([u.fix.position.lon, u.fix.position.lat])).length;
      // A cluster draws its units too (its count).
      let drawn = new Set(map.queryRenderedFeatures({ layers: [LAYERS.units] }).map((f) => f.properties.id)).size;
      if (map.getLayer(LAYERS.unitsClusters)) {
        const clusters = map.queryRenderedFeatures({ layers: [LAYERS.unitsClusters] });
        const counted = new Set<number>();
        for (const c of clusters) {
          const { cluster_id: id, point_count: n } = c.properties as { cluster_id?: number; point_count?: number };
          if (id === undefined || counted.has(id)) continue;
          counted.add(id);
          drawn += n ?? 0;
        }
      }
      if (drawn >= want) {
        hook.ready = true;
        map.off("render", checkReady);
      }
    };
    map.on("render", checkReady);

    // A tile the pack lacks is not worth a console error per tile; anything else is.
    map.on("error", (ev) => {
      const e = ev as unknown as { error?: { message?: string; status?: number }; sourceId?: string; tile?: unknown };
      if (e.sourceId === SOURCES.pack && e.tile && e.error?.status === 404) return;
      console.error("map:", e.error?.message ?? ev);
    });

    map.on("click", (e) => {
      if (drawingTakesClicks(latest.current.closures)) return; // the click is a closure point
      // A cluster of units: zoom in until it splits.
      const cluster = map.getLayer(LAYERS.unitsClusters) ? map.queryRenderedFeatures(e.point, { layers: [LAYERS.unitsClusters] })[0] : undefined;
      const clusterId = (cluster?.properties as { cluster_id?: number } | undefined)?.cluster_id;
      if (cluster && clusterId !== undefined && cluster.geometry.type === "Point") {
        const at = cluster.geometry.coordinates as [number, number];
        const src = map.getSource(SOURCES.units) as maplibregl.GeoJSONSource | undefined;
        void src
          ?.getClusterExpansionZoom(clusterId)
          .then((zoom) => map.easeTo({ center: at, zoom: Math.max(zoom, map.getZoom() + 1), duration: 400 }))
          .catch(() => undefined);
        return;
      }
      const layers = CLICKABLE_LAYERS.filter((l) => map.getLayer(l));
      const hit = map.queryRenderedFeatures(e.point, { layers })[0];
      if (!hit) return;
      const props = hit.properties as { id?: string };
      if (!props.id) return;
      const kind = hit.layer.id === LAYERS.units ? "unit" : hit.layer.id === LAYERS.incidents ? "incident" : "facility";
      latest.current.onSelect({ kind, id: props.id });
    });
    for (const layer of [...CLICKABLE_LAYERS, LAYERS.unitsClusters]) {
      map.on("mouseenter", layer, () => (map.getCanvas().style.cursor = "pointer"));
      map.on("mouseleave", layer, () => (map.getCanvas().style.cursor = ""));
    }
    // Hovering a unit shows its callsign, status and fix age (every position carries its age).
    const popup = new maplibregl.Popup({ closeButton: false, closeOnClick: false, className: "unit-popup", offset: 12 });
    map.on("mousemove", LAYERS.units, (e) => {
      const id = (e.features?.[0]?.properties as { id?: string } | undefined)?.id;
      const p = latest.current;
      const u = p.state?.units.find((x) => x.id === id);
      if (!u?.fix) return;
      const age = fixAge(u.fix, Date.now()) ?? 0;
      popup
        .setLngLat([u.fix.position.lon, u.fix.position.lat])
        .setText(t(p.lang, "unit.popup", { callsign: u.callsign, status: label.unitStatus(p.lang, u.status), age: formatAge(age, p.lang) }))
        .addTo(map);
      popup.getElement()?.classList.toggle("popup-stale", age > p.staleAfterS);
    });
    map.on("mouseleave", LAYERS.units, () => popup.remove());
    map.on("contextmenu", (e) => {
      e.preventDefault();
      latest.current.onContextMenu({ lat: e.lngLat.lat, lon: e.lngLat.lng });
    });
    map.on("dragstart", () => latest.current.onUserPan?.());
    map.on("moveend", () => {
      const c = map.getCenter();
      latest.current.onCentreChange?.({ lat: c.lat, lon: c.lng });
    });

    // Unacknowledged P1: a ring that breathes (10 frames a second is enough to draw the eye).
    // Only while such an incident exists: each frame repaints the map (software GL is not free).
    const pulse = setInterval(() => {
      if (!styleReady.current || !map.getLayer(LAYERS.incidentsPulse)) return;
      const incidents = latest.current.state?.incidents ?? [];
      if (!incidents.some((i) => i.priority === "P1" && !i.acknowledged && i.status !== "closed")) return;
      const phase = (Date.now() % 1400) / 1400;
      map.setPaintProperty(LAYERS.incidentsPulse, "circle-radius", 10 + 16 * phase);
      map.setPaintProperty(LAYERS.incidentsPulse, "circle-opacity", 0.45 * (1 - phase));
      map.setPaintProperty(LAYERS.incidentsPulse, "circle-stroke-opacity", 0.9 * (1 - phase));
    }, 100);
    // Fix ages and staleness change with time alone.
    const ages = setInterval(push, 5000);

    return () => {
      clearInterval(pulse);
      clearInterval(ages);
      if (window.__outpost === hook) delete window.__outpost;
      unitLayer.current?.dispose();
      map.remove();
      mapRef.current = null;
      unitLayer.current = null;
      styleReady.current = false;
    };
  }, []);

  // Theme or language changed: rebuild the style; data is pushed again on style.load.
  useEffect(() => {
    const map = mapRef.current;
    if (!map || appliedStyleKey.current === styleKey) return;
    appliedStyleKey.current = styleKey;
    const p = latest.current;
    styleReady.current = false;
    map.setStyle(
      buildStyle({
        theme: p.theme,
        lang: p.lang,
        ...assetUrls(window.location.href, p.init.map_base_url),
        attribution: p.init.pack.attribution,
        minZoom: p.init.pack.min_zoom,
        maxZoom: p.init.pack.max_zoom,
      }),
      { diff: false },
    );
  }, [styleKey]);

  // New state, selection or threshold: push the overlay.
  useEffect(() => {
    push();
  }, [props.state, props.selected, props.staleAfterS, props.showClosed]);

  // The draft marker for a new incident.
  useEffect(() => {
    const map = mapRef.current;
    if (!map) return;
    if (!props.draft) {
      marker.current?.remove();
      marker.current = null;
      return;
    }
    if (!marker.current) marker.current = new maplibregl.Marker({ color: "#e5342f" });
    marker.current.setLngLat([props.draft.lon, props.draft.lat]).addTo(map);
  }, [props.draft]);

  useEffect(pushTrackLine, [props.track?.line]);
  // Road closures and the drawing (issue 5, helper F).
  useEffect(() => closureLayers.current?.update(), [props.closures]);
  useEffect(() => {
    const map = mapRef.current;
    if (!map) return;
    if (!props.searchMark) {
      searchMarker.current?.remove();
      searchMarker.current = null;
      return;
    }
    if (!searchMarker.current) searchMarker.current = new maplibregl.Marker({ color: "#1f6feb", className: "search-marker" });
    searchMarker.current.setLngLat([props.searchMark.lon, props.searchMark.lat]).addTo(map);
  }, [props.searchMark]);
  // Routes and coverage: setData only when their data changes (setRoutes also compares content).
  useEffect(() => {
    const map = mapRef.current;
    if (map && styleReady.current) setRoutes(map, props.routes ?? []);
  }, [props.routes]);
  useEffect(() => {
    const map = mapRef.current;
    if (map && styleReady.current) setCoverage(map, props.coverage ?? null);
  }, [props.coverage]);
  useEffect(pushTrackHead, [props.track?.head]);

  // Follow: keep the map centred on the point (no animation: it moves many times a second).
  useEffect(() => {
    const map = mapRef.current;
    if (!map || !props.follow) return;
    map.jumpTo({ center: [props.follow.lon, props.follow.lat] });
  }, [props.follow]);

  // The device pin.
  useEffect(() => {
    const map = mapRef.current;
    if (!map) return;
    if (!props.pin) {
      pin.current?.remove();
      pin.current = null;
      return;
    }
    if (!pin.current) pin.current = new maplibregl.Marker({ color: "#8b949e" });
    pin.current.setLngLat([props.pin.lon, props.pin.lat]).addTo(map);
  }, [props.pin]);

  useEffect(() => {
    const map = mapRef.current;
    if (!map || !props.flyTo) return;
    map.easeTo({
      center: [props.flyTo.at.lon, props.flyTo.at.lat],
      zoom: Math.max(map.getZoom(), props.flyTo.minZoom ?? 16),
      duration: 500,
    });
  }, [props.flyTo]);

  return (
    <div className="map" ref={container} role="application" aria-label={t(props.lang, "map.label")}>
      {props.children}
    </div>
  );
}
