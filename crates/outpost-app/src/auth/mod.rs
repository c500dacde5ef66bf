//! Sign-in on the console (issue 6): the [`Gate`] in front of [`Console`].
//!
//! The console's cache is encrypted (SQLCipher) with a random 256-bit cache key. The key is
//! never stored in the clear: the vault (`vault.json` in the data directory) keeps, per person
//! who signed in here, the cache key and their TOTP secret sealed with a key derived from
//! their password (argon2id). So an offline sign-in needs the password (it opens the entry)
//! and the code (checked against the secret inside). A console with a server also has the
//! key escrowed by the server for this device, returned at every online sign-in, so a person
//! who never signed in here before can open it online.
//!
//! Until someone signs in, no [`Console`] exists and every other command answers
//! [`ErrorCode::SignedOut`](crate::ipc::ErrorCode::SignedOut).

use std::path::PathBuf;
use std::sync::Arc;

use outpost_domain::Clock;

use crate::ipc::{
    AuthState, AuthStatus, EnrollDevice, SetupAccount, SignIn, TotpCode, TotpEnrollment, Unlock,
};
use crate::{AppError, Console};

/// What the [`Gate`] needs to know at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateOptions {
    /// The data directory (vault, device identity, encrypted cache).
    pub data_dir: PathBuf,
    /// The area pack to open once signed in (`None`: the last one used).
    pub pack: Option<PathBuf>,
    /// True when the demo replay runs.
    pub demo: bool,
    /// Field laptop mode: the unit's callsign (exempt from the idle lock).
    pub field_unit: Option<String>,
    /// The sync server (`https://HOST:PORT`), if any; also remembered in the data directory.
    pub server_url: Option<String>,
    /// The agency CA certificate (PEM file) to trust for the server; copied into the data
    /// directory at enrollment.
    pub ca_file: Option<PathBuf>,
    /// Lock after this many seconds without input (`None`: never; forced `None` in field mode).
    pub idle_lock_s: Option<u32>,
}

/// The sign-in state machine in front of the [`Console`]. `Send + Sync`.
pub struct Gate {
    options: GateOptions,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("data_dir", &self.options.data_dir)
            .finish_non_exhaustive()
    }
}

fn not_yet() -> AppError {
    AppError::new(
        crate::ipc::ErrorCode::SignedOut,
        "sign-in is not built yet".to_owned(),
    )
}

impl Gate {
    /// Reads the vault and the device identity of `options.data_dir`; opens nothing else.
    ///
    /// # Errors
    /// [`ErrorCode::Storage`](crate::ipc::ErrorCode::Storage) when the vault is unreadable.
    pub fn open(options: GateOptions, clock: Arc<dyn Clock>) -> Result<Gate, AppError> {
        Ok(Gate { options, clock })
    }

    /// Where sign-in stands.
    pub fn auth_status(&self) -> AuthStatus {
        let _ = &self.clock;
        AuthStatus {
            state: AuthState::Setup,
            server_url: self.options.server_url.clone(),
            device_id: None,
            known_users: Vec::new(),
            user: None,
            idle_lock_s: self.options.idle_lock_s,
            message: None,
        }
    }

    /// Starts the first account of a console without a server.
    ///
    /// # Errors
    /// `InvalidInput` (name, password), `IllegalTransition` (an account exists).
    pub fn setup_account(&self, _args: SetupAccount) -> Result<TotpEnrollment, AppError> {
        Err(not_yet())
    }

    /// Confirms the first account; creates the encrypted cache; signs in.
    ///
    /// # Errors
    /// `AuthFailed` (wrong code), `Storage`.
    pub fn confirm_setup(&self, _args: TotpCode) -> Result<AuthStatus, AppError> {
        Err(not_yet())
    }

    /// Enrolls this device with the server, then signs the person in online.
    ///
    /// # Errors
    /// `Offline`, `AuthFailed`, `InvalidInput`.
    pub fn enroll_device(&self, _args: EnrollDevice) -> Result<AuthStatus, AppError> {
        Err(not_yet())
    }

    /// Signs in online, or offline from the vault.
    ///
    /// # Errors
    /// `AuthFailed` (with the reason: wrong password or code, grace period over, disabled,
    /// device revoked).
    pub fn sign_in(&self, _args: SignIn) -> Result<AuthStatus, AppError> {
        Err(not_yet())
    }

    /// Unlocks for the same person.
    ///
    /// # Errors
    /// `AuthFailed`.
    pub fn unlock(&self, _args: Unlock) -> Result<AuthStatus, AppError> {
        Err(not_yet())
    }

    /// Locks the console.
    pub fn lock(&self) -> AuthStatus {
        self.auth_status()
    }

    /// Signs the person out.
    pub fn sign_out(&self) -> AuthStatus {
        self.auth_status()
    }

    /// The console, when someone is signed in and it is not locked.
    ///
    /// # Errors
    /// `SignedOut`.
    pub fn console(&self) -> Result<Arc<Console>, AppError> {
        Err(not_yet())
    }
}
