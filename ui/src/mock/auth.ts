// The fake backend's sign-in (issue 6): the same commands and answers as
// `outpost_app::auth::Gate`, with accounts in memory and one fixed TOTP code, so the sign-in
// screens, the lock and the role-aware UI can be exercised without the Rust backend.

import type { AuthState, AuthStatus, ChangePassword, EnrollDevice, ErrorPayload, KnownUser, SetupAccount, SignedInUser, SignIn, TotpCode, Unlock } from "../bindings";

/** The sign-in commands of `ipc::COMMANDS`. */
export const AUTH_COMMANDS = ["auth_status", "setup_account", "confirm_setup", "enroll_device", "sign_in", "unlock", "change_password", "lock", "sign_out"] as const;

/** The only code the fake's "authenticator" accepts (a real console checks RFC 6238). */
export const MOCK_TOTP_CODE = "246810";
/** The TOTP secret the fake hands out at setup (base32). */
export const MOCK_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
/** The password of every account the fake seeds. */
export const MOCK_PASSWORD = "correct horse battery";

/** An account of the fake (its server, or this console's own). */
export interface MockAccount {
  user: string;
  display_name: string;
  role: string;
  unit_id: string | null;
  password: string;
}

/** How the fake's sign-in starts. */
export interface MockAuthOptions {
  /** The state at start; default `signed_in` (as `user`, so the console shows at once). */
  state?: AuthState;
  /** Who is signed in (or locked) at start; default the commander "dispatcher". */
  user?: string;
  /** Accounts in addition to the seeded ones (one per role, password MOCK_PASSWORD). */
  accounts?: MockAccount[];
  /** Idle lock, seconds (`null`: none). Default 900. */
  idleLockS?: number | null;
  /** The configured server (`null`: a console alone). Default the fake's server. */
  serverUrl?: string | null;
  /** The server answers (online sign-in); default true. */
  serverReachable?: boolean;
  /** The 12-hour full sign-in is over (unlock needs the code). */
  reauthDue?: boolean;
  /** Known users (offline sign-in) at start; default the signed-in one. */
  knownUsers?: KnownUser[];
  /** The line shown with the status (e.g. why a device was revoked). */
  message?: string | null;
  /** The login name to pre-fill (`outpost --user NAME`). */
  loginHint?: string | null;
  /** Online sign-ins answer that the password must be changed first (an administrator set it). */
  mustChangePassword?: boolean;
}

function fail(code: ErrorPayload["code"], message: string): never {
  throw { code, message } satisfies ErrorPayload;
}

/** One seeded account per role (unit u-02 for the field unit). */
export const MOCK_ACCOUNTS: MockAccount[] = [
  { user: "dispatcher", display_name: "值班指挥 王强", role: "commander", unit_id: null, password: MOCK_PASSWORD },
  { user: "li.na", display_name: "调度员 李娜", role: "dispatcher", unit_id: null, password: MOCK_PASSWORD },
  { user: "patrol02", display_name: "巡02 车组", role: "field_unit", unit_id: "u-02", password: MOCK_PASSWORD },
  { user: "viewer", display_name: "查看员 赵敏", role: "viewer", unit_id: null, password: MOCK_PASSWORD },
  { user: "admin", display_name: "管理员 陈刚", role: "administrator", unit_id: null, password: MOCK_PASSWORD },
  { user: "auditor", display_name: "审计员 周洁", role: "auditor", unit_id: null, password: MOCK_PASSWORD },
];

const WRITE_COMMANDS = new Set([
  "create_incident",
  "update_incident",
  "acknowledge_incident",
  "assign_unit",
  "release_unit",
  "set_unit_status",
  "add_note",
  "close_incident",
  "resolve_conflict",
  "bind_device",
  "set_road_closure",
  "lift_road_closure",
  "import_facilities",
  "acknowledge_assignment",
]);

/** The fake Gate. */
export class MockAuth {
  state: AuthState;
  user: SignedInUser | null = null;
  accounts = new Map<string, MockAccount>();
  knownUsers: KnownUser[];
  serverUrl: string | null;
  deviceId: string | null;
  private pending: { account: MockAccount } | null = null;
  private readonly idleLockS: number | null;
  /** The server answers (tests turn it back on after an offline sign-in). */
  reachable: boolean;
  private reauthDue: boolean;
  private message: string | null;
  private readonly loginHint: string | null;
  /** Online sign-ins must change the password first (cleared by a change). */
  mustChangePassword: boolean;

  constructor(
    opts: MockAuthOptions,
    private readonly now: () => number,
    defaultServer: string | null,
  ) {
    for (const a of [...MOCK_ACCOUNTS, ...(opts.accounts ?? [])]) this.accounts.set(a.user, a);
    this.state = opts.state ?? "signed_in";
    this.serverUrl = opts.serverUrl === undefined ? defaultServer : opts.serverUrl;
    this.deviceId = this.serverUrl && this.state !== "enroll" ? "dev-mock-01" : null;
    this.idleLockS = opts.idleLockS === undefined ? 900 : opts.idleLockS;
    this.reachable = opts.serverReachable ?? true;
    this.reauthDue = opts.reauthDue ?? false;
    this.message = opts.message ?? null;
    this.loginHint = opts.loginHint ?? null;
    this.mustChangePassword = opts.mustChangePassword ?? false;
    if (this.state === "setup") this.accounts.clear();
    const who = this.accounts.get(opts.user ?? "dispatcher");
    if ((this.state === "signed_in" || this.state === "locked" || this.state === "password_change") && who) this.user = this.signedIn(who);
    this.knownUsers = opts.knownUsers ?? (who && this.state !== "setup" && this.state !== "enroll" ? [this.known(who)] : []);
  }

  /** True when every other command may run. */
  get signedInNow(): boolean {
    return this.state === "signed_in";
  }

  /** Refuses a write the signed-in role may not do, as `access::check_op` (own unit only for a field unit). */
  checkWrite(cmd: string, args: unknown): void {
    if (!WRITE_COMMANDS.has(cmd) || !this.user) return;
    const { role, unit_id } = this.user;
    const deny = (): never => fail("forbidden", `forbidden: ${role} "${this.user?.user}" may not ${cmd.replace(/_/g, " ")}`);
    if (role === "commander") return;
    if (role === "dispatcher") {
      if (cmd === "bind_device" || cmd === "import_facilities") deny();
      return;
    }
    if (role === "field_unit") {
      const a = args as { unit_id?: string } | undefined;
      if ((cmd === "set_unit_status" || cmd === "release_unit") && a?.unit_id === unit_id) return;
      if (cmd === "add_note" || cmd === "acknowledge_assignment") return;
      deny();
    }
    deny();
  }

  status(): AuthStatus {
    return {
      state: this.state,
      server_url: this.serverUrl,
      device_id: this.deviceId,
      known_users: structuredClone(this.knownUsers),
      user: this.user ? structuredClone(this.user) : null,
      idle_lock_s: this.idleLockS,
      message: this.message,
      login_hint: this.loginHint,
    };
  }

  private signedIn(a: MockAccount, online = this.serverUrl !== null && this.reachable): SignedInUser {
    return {
      user: a.user,
      display_name: a.display_name,
      role: a.role,
      unit_id: a.unit_id,
      online,
      reauth_at: new Date(this.now() + (this.reauthDue ? -60_000 : 12 * 3600_000)).toISOString(),
    };
  }

  private known(a: MockAccount): KnownUser {
    return {
      user: a.user,
      display_name: a.display_name,
      role: a.role,
      offline_until: this.serverUrl ? new Date(this.now() + 72 * 3600_000).toISOString() : null,
    };
  }

  private check(user: string, password: string, code: string): MockAccount {
    const a = this.accounts.get(user);
    if (!a || a.password !== password || code !== MOCK_TOTP_CODE) fail("auth_failed", `wrong user name, password or code for "${user}"`);
    return a;
  }

  private enter(a: MockAccount): AuthStatus {
    // As the Gate: the picture is not for administrators and auditors (the server refuses them it).
    if (a.role === "administrator" || a.role === "auditor") {
      fail("forbidden", `${a.role} "${a.user}" cannot sign in on a console: administrators and auditors use the server's tools: \`outpost-server user …\`, \`outpost-server audit …\``);
    }
    this.user = this.signedIn(a);
    // As the Gate: an online sign-in with a password an administrator set keeps the console closed.
    this.state = this.mustChangePassword && this.user.online ? "password_change" : "signed_in";
    this.message = null;
    this.reauthDue = false;
    this.knownUsers = [this.known(a), ...this.knownUsers.filter((k) => k.user !== a.user)].slice(0, 8);
    return this.status();
  }

  /** The `mockIPC` answer of a sign-in command. */
  handle(cmd: string, args: unknown): unknown {
    switch (cmd) {
      case "auth_status":
        return this.status();
      case "setup_account": {
        if (this.state !== "setup") fail("illegal_transition", "this console already has an account");
        const a = args as SetupAccount;
        if (!/^[A-Za-z0-9._-]{1,64}$/.test(a.user)) fail("invalid_input", `user name ${JSON.stringify(a.user)}: 1–64 letters, digits, ".", "-", "_"`);
        if (!a.display_name.trim()) fail("invalid_input", "display name is empty");
        if ([...a.password].length < 12) fail("invalid_input", "the password needs at least 12 characters");
        this.pending = { account: { user: a.user, display_name: a.display_name, role: "commander", unit_id: null, password: a.password } };
        return { secret: MOCK_TOTP_SECRET, uri: `otpauth://totp/Outpost:${encodeURIComponent(a.user)}?secret=${MOCK_TOTP_SECRET}&issuer=Outpost` };
      }
      case "confirm_setup": {
        if (!this.pending) fail("illegal_transition", "start the account first (setup_account)");
        if ((args as TotpCode).code !== MOCK_TOTP_CODE) fail("auth_failed", "wrong code: enter the code the authenticator shows now");
        const a = this.pending.account;
        this.accounts.set(a.user, a);
        this.pending = null;
        return this.enter(a);
      }
      case "enroll_device": {
        if (this.state !== "enroll") fail("illegal_transition", "this device is already enrolled");
        const e = args as EnrollDevice;
        if (!/^https:\/\/[^/\s]+$/.test(e.server_url.trim())) fail("invalid_input", `server ${JSON.stringify(e.server_url)} is not https://HOST:PORT`);
        if (!e.device_name.trim()) fail("invalid_input", "give the device a name");
        if (!this.reachable) fail("offline", `cannot reach ${e.server_url}`);
        const a = this.check(e.user, e.password, e.code);
        this.serverUrl = e.server_url.trim();
        this.deviceId = "dev-mock-01";
        return this.enter(a);
      }
      case "sign_in": {
        if (this.state === "setup" || this.state === "enroll" || this.state === "revoked") fail("illegal_transition", `cannot sign in while ${this.state}`);
        const s = args as SignIn;
        return this.enter(this.check(s.user, s.password, s.code));
      }
      case "unlock": {
        if (this.state !== "locked" || !this.user) fail("illegal_transition", "the console is not locked");
        const u = args as Unlock;
        const a = this.accounts.get(this.user.user);
        if (!a || a.password !== u.password) fail("auth_failed", "wrong password");
        if (this.reauthDue && u.code !== MOCK_TOTP_CODE) fail("auth_failed", "12 hours since the last full sign-in: enter a current code");
        return this.enter(a);
      }
      case "change_password": {
        if ((this.state !== "signed_in" && this.state !== "password_change") || !this.user) fail("signed_out", "sign in (or unlock) first to change your password");
        const c = args as ChangePassword;
        if ([...c.new_password].length < 12 || !c.new_password.trim()) fail("invalid_input", "new password: at least 12 characters, not only spaces");
        if (c.new_password === c.old_password) fail("invalid_input", "new password: the same as the current one; choose a new one");
        if (this.serverUrl !== null && !this.user.online) fail("offline", "you signed in offline: a password can be changed only while the server can be reached");
        if (this.serverUrl !== null && !this.reachable) fail("offline", "the server cannot be reached: your password is unchanged; try again when it answers");
        const a = this.accounts.get(this.user.user);
        if (!a || a.password !== c.old_password || c.code !== MOCK_TOTP_CODE) fail("auth_failed", "wrong current password or code");
        // A copy: the seeded accounts are shared by every fake.
        this.accounts.set(a.user, { ...a, password: c.new_password });
        this.mustChangePassword = false;
        this.state = "signed_in";
        this.message = "password changed";
        return this.status();
      }
      case "lock":
        if (this.state === "signed_in") this.state = "locked";
        return this.status();
      case "sign_out":
        if (this.state === "signed_in" || this.state === "locked" || this.state === "password_change") {
          this.state = "signed_out";
          this.user = null;
        }
        return this.status();
      default:
        fail("invalid_input", `unknown command ${cmd}`);
    }
  }
}
