// The console's live state: fetched with consoleState(), refreshed on every `state-changed`
// event and after each action. Kept outside React so it can be tested without a DOM.

import { listen } from "@tauri-apps/api/event";
import { type ConsoleState, consoleState, STATE_CHANGED_EVENT } from "./bindings";

type Listener = () => void;

/** Holds the newest ConsoleState; ignores responses older than one already applied. */
export class ConsoleStore {
  private state: ConsoleState | null = null;
  private listeners = new Set<Listener>();
  private error: unknown = null;
  private inFlight: Promise<void> | null = null;
  private again = false;

  constructor(private readonly fetchState: () => Promise<ConsoleState> = consoleState) {}

  get = (): ConsoleState | null => this.state;
  lastError = (): unknown => this.error;

  subscribe = (l: Listener): (() => void) => {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  };

  /** Applies a state unless a newer revision is already shown. */
  apply(next: ConsoleState): void {
    if (this.state && next.revision < this.state.revision) return;
    this.state = next;
    for (const l of this.listeners) l();
  }

  /** Fetches the state; calls made while a fetch runs collapse into one more fetch. */
  refresh = (): Promise<void> => {
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    this.inFlight = (async () => {
      do {
        this.again = false;
        try {
          const next = await this.fetchState();
          const hadError = this.error !== null;
          const before = this.state;
          this.error = null;
          this.apply(next);
          // Clearing an error is a change too, even when the state itself was not newer.
          if (hadError && this.state === before) for (const l of this.listeners) l();
        } catch (e) {
          this.error = e;
          for (const l of this.listeners) l();
        }
      } while (this.again);
      this.inFlight = null;
    })();
    return this.inFlight;
  };

  /** Refreshes on every STATE_CHANGED_EVENT; returns the unlisten function. */
  async listen(): Promise<() => void> {
    return listen<{ revision?: unknown } | null>(STATE_CHANGED_EVENT, (e) => {
      const r = e.payload?.revision;
      // Skip only events already reflected; an event without a revision still refreshes.
      if (typeof r !== "number" || !this.state || r > this.state.revision) void this.refresh();
    });
  }
}
