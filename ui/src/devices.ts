// The device registry as the console shows it: read with listDevices() when the state changes
// (a device.report or device.bind op arrived) and every few seconds, for the devices panel and
// the top bar's count of devices waiting to be bound.

import { useCallback, useEffect, useState } from "react";
import { type DeviceView, listDevices } from "./bindings";
import { errorText } from "./errors";

/** Seconds between reads of the registry while nothing else triggers one. */
export const DEVICES_POLL_MS = 5000;

/** Devices that report but are bound to no unit. */
export function unboundCount(devices: DeviceView[] | null): number {
  return devices?.filter((d) => d.unit_id === null).length ?? 0;
}

/** The registry, re-read when `revision` changes and every DEVICES_POLL_MS; `reload` reads it now. */
export function useDevices(revision: number | undefined, read: () => Promise<DeviceView[]> = listDevices) {
  const [devices, setDevices] = useState<DeviceView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(
    () =>
      read()
        .then((d) => {
          setDevices(d);
          setError(null);
        })
        .catch((e) => setError(errorText(e))),
    [read],
  );
  useEffect(() => {
    void reload();
  }, [reload, revision]);
  useEffect(() => {
    const id = setInterval(() => void reload(), DEVICES_POLL_MS);
    return () => clearInterval(id);
  }, [reload]);
  return { devices, error, reload };
}
