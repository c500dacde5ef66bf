//! WebKitGTK settings of the console's window that keep its memory down (issue 7).
//!
//! - **Cache model *document viewer*.** The console is one page whose files come from the app
//!   itself (`tauri://`, `outpost://`): WebKit's page and memory caches, sized for a web browser
//!   by default, would only keep copies of what the page already holds.
//! - **Not changed: GPU compositing.** On a machine without a GPU (Mesa's software GL) the
//!   hardware acceleration policy *never* saved about 100 MiB of the web process at idle, but
//!   made each map redraw about twice as slow (bench/map.sh, WebKitGTK 2.50): what a commander
//!   sees comes first, so WebKit's default is kept.

/// Applies the memory settings to every webview window of `app` (call once, at
/// [`tauri::RunEvent::Ready`]: the windows of `tauri.conf.json` exist then). A window whose
/// webview cannot be reached is logged and left with WebKit's defaults: the console works
/// either way.
#[cfg(target_os = "linux")]
pub fn tune(app: &tauri::AppHandle) {
    use webkit2gtk::{CacheModel, WebContextExt, WebViewExt};

    for (label, window) in tauri::Manager::webview_windows(app) {
        let applied = window.with_webview(move |platform| {
            if let Some(context) = platform.inner().context() {
                context.set_cache_model(CacheModel::DocumentViewer);
                tracing::debug!("webview cache model: document viewer");
            }
        });
        if let Err(e) = applied {
            tracing::warn!(window = %label, error = %e, "webview memory settings not applied");
        }
    }
}

/// Other systems: their webviews keep their defaults.
#[cfg(not(target_os = "linux"))]
pub fn tune(_app: &tauri::AppHandle) {}
