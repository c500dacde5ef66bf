//! This device's identity (`DATA/device/`): its private key (made by
//! `outpost_sync::account::new_key_and_csr`, never sent), the certificate the server signed
//! at enrollment, the agency CA and the device id. The key file is 0600 on Unix.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::server::DeviceIdentity;
use super::vault::write_private;

/// The directory inside the data directory.
pub const DEVICE_DIR: &str = "device";

#[derive(Serialize, Deserialize)]
struct DeviceMeta {
    device_id: String,
    server_url: String,
}

fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join(DEVICE_DIR)
}

/// Reads the identity (`None` before enrollment).
///
/// # Errors
/// A message naming the file when the directory is incomplete or unreadable.
pub fn load(data_dir: &Path) -> Result<Option<(DeviceIdentity, String)>, String> {
    let d = dir(data_dir);
    let meta_path = d.join("device.json");
    let meta = match std::fs::read_to_string(&meta_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", meta_path.display())),
    };
    let meta: DeviceMeta = serde_json::from_str(&meta)
        .map_err(|e| format!("{} is damaged: {e}", meta_path.display()))?;
    let read = |name: &str| {
        let p = d.join(name);
        std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    Ok(Some((
        DeviceIdentity {
            device_id: meta.device_id,
            cert_pem: read("cert.pem")?,
            key_pem: read("key.pem")?,
            ca_pem: read("ca.pem")?,
        },
        meta.server_url,
    )))
}

/// Stores the identity (key first, the metadata that marks it complete last).
///
/// # Errors
/// A message naming the file.
pub fn save(data_dir: &Path, id: &DeviceIdentity, server_url: &str) -> Result<(), String> {
    let d = dir(data_dir);
    std::fs::create_dir_all(&d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700));
    }
    let meta = serde_json::to_vec_pretty(&DeviceMeta {
        device_id: id.device_id.clone(),
        server_url: server_url.to_owned(),
    })
    .map_err(|e| e.to_string())?;
    for (name, bytes) in [
        ("key.pem", id.key_pem.as_bytes()),
        ("cert.pem", id.cert_pem.as_bytes()),
        ("ca.pem", id.ca_pem.as_bytes()),
        ("device.json", &meta[..]),
    ] {
        let p = d.join(name);
        write_private(&p, bytes).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    Ok(())
}

/// Deletes the identity (a revoked device forgets its key).
///
/// # Errors
/// A message naming the directory.
pub fn forget(data_dir: &Path) -> Result<(), String> {
    let d = dir(data_dir);
    match std::fs::remove_dir_all(&d) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot delete {}: {e}", d.display())),
    }
}
