//! WebKitGTK settings of the console's window that keep its memory down (issue 7).
//!
//! - **Compositing without a GPU.** Where the machine has no GPU render node (`/dev/dri/renderD*`),
//!   every GL context WebKit makes is Mesa's software rasteriser. WebKit's accelerated
//!   compositing then only adds a GL compositor (its layer textures and buffers, drawn on the
//!   CPU anyway): on the reference machine it held about 100 MiB of the web process's memory at
//!   idle. The console sets the hardware acceleration policy to *never* there; the map's WebGL
//!   still draws (WebKit copies the canvas into the page). With a render node, WebKit's default
//!   (compositing on the GPU) is kept.
//! - **Cache model *document viewer*.** The console is one page whose files come from the app
//!   itself (`tauri://`, `outpost://`): WebKit's page and memory caches, sized for a web browser
//!   by default, would only keep copies of what the page already holds.

use std::path::Path;

/// The folder of the kernel's DRM device nodes (GPUs) on Linux.
const DRI_DIR: &str = "/dev/dri";

/// True when `dir` (the DRM device folder, normally `/dev/dri`) holds a render node
/// (`renderD128`, …): a GPU that GL can draw on. A missing or unreadable folder is no GPU.
pub fn has_render_node(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    })
}

/// Applies the memory settings to every webview window of `app` (call once, at
/// [`tauri::RunEvent::Ready`]: the windows of `tauri.conf.json` exist then). A window whose
/// webview cannot be reached is logged and left with WebKit's defaults: the console works
/// either way.
#[cfg(target_os = "linux")]
pub fn tune(app: &tauri::AppHandle) {
    use webkit2gtk::{
        CacheModel, HardwareAccelerationPolicy, SettingsExt, WebContextExt, WebViewExt,
    };

    let software_gl = !has_render_node(Path::new(DRI_DIR));
    for (label, window) in tauri::Manager::webview_windows(app) {
        let applied = window.with_webview(move |platform| {
            let view = platform.inner();
            if let Some(context) = view.context() {
                context.set_cache_model(CacheModel::DocumentViewer);
            }
            if software_gl && let Some(settings) = WebViewExt::settings(&view) {
                settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            }
            tracing::debug!(software_gl, "webview memory settings applied");
        });
        if let Err(e) = applied {
            tracing::warn!(window = %label, error = %e, "webview memory settings not applied");
        }
    }
}

/// Other systems: their webviews keep their defaults.
#[cfg(not(target_os = "linux"))]
pub fn tune(_app: &tauri::AppHandle) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_render_node_is_a_gpu_and_a_card_alone_or_no_folder_is_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(!has_render_node(dir.path()), "empty folder");
        std::fs::write(dir.path().join("card0"), b"").expect("card0");
        assert!(
            !has_render_node(dir.path()),
            "a display card without a render node"
        );
        std::fs::write(dir.path().join("renderD128"), b"").expect("renderD128");
        assert!(has_render_node(dir.path()));
        assert!(!has_render_node(&dir.path().join("absent")), "no folder");
    }
}
