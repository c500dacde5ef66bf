// Sign-in on the UI side (issue 6): what a role may do (to hide or disable write actions: the
// backend and the server enforce the same table, `outpost_domain::access::check_op`), the idle
// lock timer, and small helpers for the sign-in screens.

import { createContext, useContext, useEffect, useRef } from "react";
import type { AuthStatus, SignedInUser } from "./bindings";
import type { MessageKey } from "./i18n";

/** Shortest password `setup_account` accepts (ipc.rs `SetupAccount::password`). */
export const MIN_PASSWORD_CHARS = 12;

/** Ms between `auth_status` reads while signed in (the 12-hour lock is the backend's). */
export const AUTH_POLL_MS = 15_000;

/** The roles of `outpost_domain::access::Role`, in the order shown to people. */
export const ROLES = ["commander", "dispatcher", "field_unit", "viewer", "administrator", "auditor"] as const;
export type Role = (typeof ROLES)[number];

/** The i18n key of a role name; unknown roles are shown as sent. */
export function roleKey(role: string): MessageKey | null {
  return (ROLES as readonly string[]).includes(role) ? (`role.${role}` as MessageKey) : null;
}

/**
 * What the signed-in person may write, as `access::check_op` decides it: a commander
 * everything; a dispatcher everything but the roster, facilities and device bindings; a field
 * unit only its own unit's status and notes on incidents its unit is on; a viewer, an
 * administrator and an auditor nothing.
 */
export interface Permissions {
  /** Create, edit, acknowledge, close incidents; assign and release units. */
  incidents: boolean;
  /** Change this unit's status (a field unit: only its own). */
  unitStatus: (unitId: string) => boolean;
  /** Add a note to an incident with these units on it (a field unit: only when its own is). */
  note: (unitIdsOnIncident: readonly string[]) => boolean;
  /** Draw, change and lift road closures. */
  closures: boolean;
  /** Resolve sync conflicts. */
  conflicts: boolean;
  /** Bind devices to units. */
  devices: boolean;
  /** Import stations, posts and checkpoints. */
  facilities: boolean;
  /** Writes nothing at all (viewer, administrator, auditor, an unbound field unit). */
  readOnly: boolean;
}

/** Everything allowed: the default of the context (tests and the pre-sign-in era). */
export const ALL_ALLOWED: Permissions = {
  incidents: true,
  unitStatus: () => true,
  note: () => true,
  closures: true,
  conflicts: true,
  devices: true,
  facilities: true,
  readOnly: false,
};

const NOTHING: Permissions = {
  incidents: false,
  unitStatus: () => false,
  note: () => false,
  closures: false,
  conflicts: false,
  devices: false,
  facilities: false,
  readOnly: true,
};

/** The permissions of `user` (none when nobody is signed in). */
export function permissionsOf(user: Pick<SignedInUser, "role" | "unit_id"> | null): Permissions {
  if (!user) return NOTHING;
  switch (user.role) {
    case "commander":
      return ALL_ALLOWED;
    case "dispatcher":
      return { ...ALL_ALLOWED, devices: false, facilities: false };
    case "field_unit": {
      const own = user.unit_id;
      if (!own) return NOTHING;
      return {
        ...NOTHING,
        unitStatus: (unitId) => unitId === own,
        note: (units) => units.includes(own),
        readOnly: false,
      };
    }
    default:
      return NOTHING;
  }
}

/** The signed-in person's permissions, for every panel. */
export const PermissionsContext = createContext<Permissions>(ALL_ALLOWED);

/** The permissions of the signed-in person (everything outside a provider). */
export function usePermissions(): Permissions {
  return useContext(PermissionsContext);
}

/** True when an unlock needs the code too: the 12-hour full sign-in is over. */
export function unlockNeedsCode(status: AuthStatus, nowMs: number): boolean {
  const at = status.user?.reauth_at;
  return at != null && Date.parse(at) <= nowMs;
}

/** Input that counts as someone at the console (keyboard, mouse, touch, wheel). */
export const ACTIVITY_EVENTS = ["keydown", "mousedown", "mousemove", "wheel", "touchstart", "pointerdown"] as const;

/**
 * Calls `onIdle` once after `idleS` seconds without keyboard, mouse or touch input on the
 * window; any input starts the wait again. `idleS` null or ≤ 0: never (field laptop mode or
 * switched off).
 */
export function useIdleLock(idleS: number | null, onIdle: () => void): void {
  const onIdleRef = useRef(onIdle);
  onIdleRef.current = onIdle;
  useEffect(() => {
    if (idleS == null || idleS <= 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let fired = false;
    const arm = () => {
      if (fired) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        fired = true;
        onIdleRef.current();
      }, idleS * 1000);
    };
    arm();
    for (const e of ACTIVITY_EVENTS) window.addEventListener(e, arm, { passive: true, capture: true });
    return () => {
      clearTimeout(timer);
      for (const e of ACTIVITY_EVENTS) window.removeEventListener(e, arm, { capture: true });
    };
  }, [idleS]);
}

/**
 * A login name as the server and `SetupAccount::user` allow it (outpost_domain::names):
 * 1–64 letters of any script (王伟), digits, `.`, `-`, `_`, `@`; not starting with `-`.
 * (The console also refuses Latin mixed with Greek/Cyrillic, with its own message.)
 */
export function validUserName(user: string): boolean {
  return /^(?!-)[\p{Alphabetic}\p{N}._@-]{1,64}$/u.test(user);
}
