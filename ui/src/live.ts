// The wiring both layouts (command console and field laptop) share: the document's language
// and theme, the live state store following the backend's state-changed event, and the
// connection indicator's polling.
import { useEffect } from "react";
import { errorText } from "./errors";
import type { Lang } from "./i18n";
import type { MapTheme } from "./map/style";
import type { ConsoleStore } from "./store";
import type { SyncStore } from "./sync";

/**
 * Sets `<html lang>` and the theme, refreshes `store` and keeps it listening to the backend
 * (reporting a failed subscription through `onError`), and runs `syncStore`'s polling, for as
 * long as the calling component is mounted.
 */
export function useLiveConsole(
  store: ConsoleStore,
  syncStore: SyncStore,
  lang: Lang,
  theme: MapTheme,
  onError: (message: string) => void,
): void {
  useEffect(() => {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.documentElement.dataset.theme = theme;
  }, [lang, theme]);

  useEffect(() => {
    let unlisten: (() => void) | undefined;
    let gone = false;
    void store.refresh();
    store
      .listen()
      .then((u) => (gone ? u() : (unlisten = u)))
      .catch((e) => onError(errorText(e)));
    return () => {
      gone = true;
      unlisten?.();
    };
    // `onError` is a state setter, stable for the component's life.
  }, [store]);

  // The connection indicator: polled, and re-read after every change.
  useEffect(() => syncStore.start(), [syncStore]);
}
