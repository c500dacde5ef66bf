import { useEffect, useState } from "react";

/** The current time in ms, updated every `periodMs` (the status board ticks each second). */
export function useNow(periodMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), periodMs);
    return () => clearInterval(id);
  }, [periodMs]);
  return now;
}

/** True between 19:00 and 07:00 local time (dispatch rooms are dark at night). */
export function isNightHour(d: Date): boolean {
  const h = d.getHours();
  return h >= 19 || h < 7;
}
