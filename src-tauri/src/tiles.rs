//! The `outpost` URI scheme: serves the open area pack's vector tiles to the map with no
//! network request.
//!
//! `GET {base}/tiles/{z}/{x}/{y}.pbf` (XYZ scheme, as MapLibre asks) answers the tile as
//! uncompressed Mapbox Vector Tile bytes (`application/x-protobuf`), `204 No Content` for a
//! tile the pack does not hold (the sea beyond the area; MapLibre draws it empty), `404` for
//! any other path or when no pack is open, `500` when the pack cannot be read. `{base}` is
//! [`MAP_BASE_URL`]: the page's origin differs from it, so every answer allows any origin.

use std::sync::Arc;

use tauri::http::{Method, Request, Response, StatusCode, header};
use tauri::{Manager, Runtime, UriSchemeContext, UriSchemeResponder};

use crate::commands::SharedShell;
use outpost_app::Console;

/// The scheme name registered with the webview.
pub const SCHEME: &str = "outpost";

/// How the webview addresses [`SCHEME`]: WebKitGTK and WKWebView take custom schemes as they
/// are; WebView2 (Windows) only routes them as `http://{scheme}.localhost`.
#[cfg(not(windows))]
pub const MAP_BASE_URL: &str = "outpost://localhost";
/// How the webview addresses [`SCHEME`] on Windows (WebView2).
#[cfg(windows)]
pub const MAP_BASE_URL: &str = "http://outpost.localhost";

/// Highest zoom level a tile request may name (MVT tiles beyond z22 make no sense).
const MAX_ZOOM: u8 = 22;

/// The tile a request path names, `(z, x, y)` in the XYZ scheme, or `None` when the path is
/// not `/tiles/{z}/{x}/{y}.pbf` with `x, y < 2^z`.
pub fn tile_of_path(path: &str) -> Option<(u8, u32, u32)> {
    let rest = path.strip_prefix("/tiles/")?;
    let mut parts = rest.split('/');
    let z: u8 = parts.next()?.parse().ok()?;
    let x: u32 = parts.next()?.parse().ok()?;
    let y: u32 = parts.next()?.strip_suffix(".pbf")?.parse().ok()?;
    if parts.next().is_some() || z > MAX_ZOOM {
        return None;
    }
    let side = 1u32 << z;
    (x < side && y < side).then_some((z, x, y))
}

/// Builds the answer to one request (pure apart from reading the pack).
pub fn respond(console: &Console, method: &Method, path: &str) -> Response<Vec<u8>> {
    if method == Method::OPTIONS {
        return reply(StatusCode::NO_CONTENT, "text/plain", Vec::new());
    }
    let Some((z, x, y)) = tile_of_path(path) else {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            format!("no such resource: {path}").into_bytes(),
        );
    };
    let Some(pack) = console.pack() else {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            b"no area pack is open".to_vec(),
        );
    };
    match pack.tile(z, x, y) {
        Ok(Some(bytes)) => reply(StatusCode::OK, "application/x-protobuf", bytes),
        Ok(None) => reply(StatusCode::NO_CONTENT, "application/x-protobuf", Vec::new()),
        Err(e) => {
            tracing::warn!(z, x, y, error = %e, "tile read failed");
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                e.to_string().into_bytes(),
            )
        }
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, OPTIONS"),
        // The next run may open another pack under the same URLs: keep nothing across runs.
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    response
}

/// The asynchronous scheme handler: reads the tile on the blocking pool so the webview's
/// thread never waits on SQLite.
pub fn handle<R: Runtime>(
    ctx: UriSchemeContext<'_, R>,
    request: Request<Vec<u8>>,
    responder: UriSchemeResponder,
) {
    // Tiles come from the signed-in console's pack; nothing while signed out or locked.
    let Some(console) = ctx
        .app_handle()
        .try_state::<SharedShell>()
        .and_then(|s| s.console().ok())
    else {
        responder.respond(reply(
            StatusCode::FORBIDDEN,
            "text/plain",
            b"sign in first".to_vec(),
        ));
        return;
    };
    let console: Arc<Console> = console;
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    tauri::async_runtime::spawn_blocking(move || {
        responder.respond(respond(&console, &method, &path));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths() {
        assert_eq!(tile_of_path("/tiles/0/0/0.pbf"), Some((0, 0, 0)));
        assert_eq!(
            tile_of_path("/tiles/14/8290/6064.pbf"),
            Some((14, 8290, 6064))
        );
        // x or y outside the zoom level's grid.
        assert_eq!(tile_of_path("/tiles/1/2/0.pbf"), None);
        assert_eq!(tile_of_path("/tiles/1/0/2.pbf"), None);
        assert_eq!(tile_of_path("/tiles/23/0/0.pbf"), None);
        // Not a tile path.
        assert_eq!(tile_of_path("/tiles/14/8290/6064.png"), None);
        assert_eq!(tile_of_path("/tiles/14/8290/6064.pbf/x"), None);
        assert_eq!(tile_of_path("/tiles/14/-1/0.pbf"), None);
        assert_eq!(tile_of_path("/style/day.json"), None);
        assert_eq!(tile_of_path("/tiles/../../etc/passwd"), None);
    }
}
