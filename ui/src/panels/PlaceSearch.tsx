import { useEffect, useId, useRef, useState } from "react";
import { type LatLon, MAX_ADDRESS_CHARS, type PlaceHit, searchPlaces } from "../bindings";
import { errorText } from "../errors";
import { type Lang, label, t } from "../i18n";

export interface PlaceSearchProps {
  lang: Lang;
  id: string;
  value: string;
  onChange: (text: string) => void;
  onPick: (hit: PlaceHit) => void;
  near: LatLon | null;
  placeholder?: string;
  inputRef?: React.Ref<HTMLInputElement>;
  autoFocus?: boolean;
}

/** The name of a hit in `lang`. */
export function hitName(h: PlaceHit, lang: Lang): string {
  return (lang === "zh" ? (h.name_zh ?? h.name) : (h.name_en ?? h.name)) || h.name;
}

/** A text box with offline search suggestions (searchPlaces); ↑/↓ and Enter pick a hit. */
export function PlaceSearch(p: PlaceSearchProps) {
  const [hits, setHits] = useState<PlaceHit[]>([]);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const [status, setStatus] = useState<string | null>(null);
  const listId = useId();
  const seq = useRef(0);
  // Search only what the user typed, not a value filled in from a pick or a right-click.
  const [typed, setTyped] = useState(false);

  useEffect(() => {
    const text = p.value.trim();
    if (!typed || text.length < 2) {
      setHits([]);
      setStatus(null);
      return;
    }
    const mine = ++seq.current;
    setStatus(t(p.lang, "search.searching"));
    const timer = setTimeout(() => {
      searchPlaces({ text, near: p.near, limit: 8 })
        .then((h) => {
          if (mine !== seq.current) return;
          setHits(h);
          setActive(0);
          setStatus(h.length ? null : t(p.lang, "search.none"));
        })
        .catch((e) => {
          if (mine === seq.current) setStatus(errorText(e));
        });
    }, 150);
    return () => clearTimeout(timer);
    // `near` changes as the map moves; searching again for that is not worth the flicker.
  }, [p.value, p.lang, typed]);

  const pick = (h: PlaceHit) => {
    setTyped(false);
    setOpen(false);
    setHits([]);
    seq.current++;
    p.onPick(h);
  };

  return (
    <div className="place-search">
      <input
        id={p.id}
        ref={p.inputRef}
        type="search"
        autoComplete="off"
        maxLength={MAX_ADDRESS_CHARS}
        role="combobox"
        aria-expanded={open && hits.length > 0}
        aria-controls={listId}
        value={p.value}
        placeholder={p.placeholder}
        autoFocus={p.autoFocus}
        onChange={(e) => {
          setTyped(true);
          p.onChange(e.target.value);
          setOpen(true);
        }}
        onFocus={() => setOpen(true)}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        onKeyDown={(e) => {
          if (!open || hits.length === 0) return;
          if (e.key === "ArrowDown") {
            e.preventDefault();
            setActive((a) => Math.min(hits.length - 1, a + 1));
          } else if (e.key === "ArrowUp") {
            e.preventDefault();
            setActive((a) => Math.max(0, a - 1));
          } else if (e.key === "Enter") {
            const h = hits[active];
            if (h) {
              e.preventDefault();
              pick(h);
            }
          } else if (e.key === "Escape") {
            e.stopPropagation();
            setOpen(false);
          }
        }}
      />
      {open && (hits.length > 0 || status) && (
        <ul className="search-hits" id={listId} role="listbox">
          {hits.map((h, i) => (
            <li
              key={`${h.kind}-${h.name}-${h.position.lat}-${h.position.lon}`}
              role="option"
              aria-selected={i === active}
              className={i === active ? "active" : undefined}
              data-search-hit={i}
              onMouseDown={(e) => {
                e.preventDefault();
                pick(h);
              }}
            >
              <strong>{hitName(h, p.lang)}</strong> <span className="muted">{label.placeKind(p.lang, h.kind)}</span>
              <div className="muted small">
                {h.address}
                {h.distance_m != null && ` · ${(h.distance_m / 1000).toFixed(1)} km`}
              </div>
            </li>
          ))}
          {status && <li className="muted small">{status}</li>}
        </ul>
      )}
    </div>
  );
}
