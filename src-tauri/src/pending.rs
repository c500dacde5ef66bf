//! Stand-in for `outpost_app::Console` and `outpost_geo::Pack` with the agreed signatures,
//! until the real ones land; every use-case answers "not available yet".

#![allow(missing_docs, dead_code, clippy::unused_self)]

use std::path::PathBuf;
use std::sync::Arc;

use outpost_app::ipc::*;
use outpost_domain::Clock;
use outpost_domain::LatLon;

pub struct ConsoleOptions {
    pub pack: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub demo: bool,
    pub user: String,
}

#[derive(Debug)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for AppError {}

impl From<AppError> for ErrorPayload {
    fn from(e: AppError) -> Self {
        ErrorPayload {
            code: e.code,
            message: e.message,
        }
    }
}

#[derive(Debug)]
pub struct PackError(pub String);
impl std::fmt::Display for PackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct Pack;
impl Pack {
    pub fn tile(&self, _z: u8, _x: u32, _y: u32) -> Result<Option<Vec<u8>>, PackError> {
        Ok(None)
    }
}

pub struct Console {
    opts: ConsoleOptions,
    map_base_url: std::sync::Mutex<String>,
}

fn pending<T>() -> Result<T, AppError> {
    Err(AppError {
        code: ErrorCode::Storage,
        message: "the console core is not available in this build yet".into(),
    })
}

impl Console {
    pub fn open(opts: ConsoleOptions, _clock: Arc<dyn Clock>) -> Result<Console, AppError> {
        Ok(Console {
            opts,
            map_base_url: std::sync::Mutex::new(String::new()),
        })
    }
    pub fn on_change(&self, _f: Box<dyn Fn(u64) + Send + Sync>) {}
    pub fn pack(&self) -> Option<&Pack> {
        None
    }
    pub fn set_map_base_url(&self, url: String) {
        if let Ok(mut g) = self.map_base_url.lock() {
            *g = url;
        }
    }
    pub fn startup(&self) -> Startup {
        Startup::PackError {
            problem: PackProblem {
                path: self
                    .opts
                    .pack
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                problem: "the console core is not available in this build yet".into(),
                hint: "rebuild once outpost-app lands".into(),
            },
        }
    }
    pub fn console_state(&self) -> Result<ConsoleState, AppError> {
        pending()
    }
    pub fn incident_detail(&self, _a: IncidentRef) -> Result<IncidentDetail, AppError> {
        pending()
    }
    pub fn create_incident(&self, _a: NewIncident) -> Result<IncidentDetail, AppError> {
        pending()
    }
    pub fn update_incident(&self, _a: UpdateIncident) -> Result<IncidentDetail, AppError> {
        pending()
    }
    pub fn acknowledge_incident(&self, _a: IncidentRef) -> Result<IncidentDetail, AppError> {
        pending()
    }
    pub fn assign_unit(&self, _a: UnitOnIncident) -> Result<IncidentDetail, AppError> {
        pending()
    }
    pub fn release_unit(&self, _a: UnitOnIncident) -> Result<IncidentDetail, AppError> {
        pending()
    }
    pub fn set_unit_status(&self, _a: SetUnitStatus) -> Result<UnitView, AppError> {
        pending()
    }
    pub fn add_note(&self, _a: AddNote) -> Result<IncidentDetail, AppError> {
        pending()
    }
    pub fn close_incident(&self, _a: CloseIncident) -> Result<IncidentDetail, AppError> {
        pending()
    }
    pub fn search_places(&self, _a: PlaceQuery) -> Result<Vec<PlaceHit>, AppError> {
        pending()
    }
    pub fn describe_location(&self, _a: LatLon) -> Result<LocationDescription, AppError> {
        pending()
    }
    pub fn get_settings(&self) -> Result<Settings, AppError> {
        pending()
    }
    pub fn save_settings(&self, _a: Settings) -> Result<Settings, AppError> {
        pending()
    }
}
