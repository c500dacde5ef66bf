import { useState } from "react";
import type { LatLon, PlaceHit } from "../bindings";
import { type Lang, t } from "../i18n";
import { PlaceSearch } from "./PlaceSearch";

export interface MapSearchProps {
  lang: Lang;
  /** The map centre: hits are ranked by distance from it. */
  centre: LatLon;
  /** A hit was picked: fly there and mark it. */
  onPick: (hit: PlaceHit) => void;
  /** The user started a new search (the previous hit's marker goes). */
  onClear: () => void;
}

/** The search box over the map (top left): offline search of the pack near the map centre. */
export function MapSearch(p: MapSearchProps) {
  const [text, setText] = useState("");
  return (
    <div className="map-search" id="map-search-box">
      <PlaceSearch
        lang={p.lang}
        id="map-search"
        value={text}
        near={p.centre}
        placeholder={t(p.lang, "mapSearch.placeholder")}
        onChange={(v) => {
          setText(v);
          p.onClear();
        }}
        onPick={(h) => {
          setText("");
          p.onPick(h);
        }}
      />
    </div>
  );
}
