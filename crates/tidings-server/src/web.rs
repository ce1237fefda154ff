//! The orders board, the demo page at `/`, and the admin console at `/admin`: served from files compiled into the
//! binary (web/ and the SDK's bundle).
//!
//! The pages are plain HTML, CSS and JavaScript modules with no build step of their own; the one built file it
//! loads, the SDK bundle `clients/js/dist/tidings.js`, is committed and checked for staleness by the SDK's tests.
//! Compiling the files in means `tidings serve` needs nothing beside it to show them.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One file of the page.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// The page's files under `/assets/`.
const ASSETS: &[Asset] = &[
    Asset { name: "style.css", content_type: CSS, body: include_str!("../../../web/style.css") },
    Asset { name: "app.js", content_type: JS, body: include_str!("../../../web/app.js") },
    Asset { name: "dom.js", content_type: JS, body: include_str!("../../../web/dom.js") },
    Asset { name: "board.js", content_type: JS, body: include_str!("../../../web/board.js") },
    Asset { name: "inspector.js", content_type: JS, body: include_str!("../../../web/inspector.js") },
    Asset { name: "signin.js", content_type: JS, body: include_str!("../../../web/signin.js") },
    Asset { name: "tidings.js", content_type: JS, body: include_str!("../../../clients/js/dist/tidings.js") },
    Asset { name: "admin.css", content_type: CSS, body: include_str!("../../../web/admin.css") },
    Asset { name: "admin.js", content_type: JS, body: include_str!("../../../web/admin.js") },
    Asset { name: "admin-views.js", content_type: JS, body: include_str!("../../../web/admin-views.js") },
    Asset { name: "admin-data.js", content_type: JS, body: include_str!("../../../web/admin-data.js") },
    Asset { name: "admin-charts.js", content_type: JS, body: include_str!("../../../web/admin-charts.js") },
];

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const INDEX: &str = include_str!("../../../web/index.html");
const ADMIN: &str = include_str!("../../../web/admin.html");

/// Only this server's own files run on the page, and it talks only to this server (WebSocket and fetch).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                                       object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The routes of the pages: the board at `/`, the admin console at `/admin`, and their files at `/assets/{name}`.
/// The console's page holds no secret: what it shows comes from the admin API, which asks for an admin's token or
/// an API key on every request.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index)).route("/admin", get(admin)).route("/assets/{name}", get(asset))
}

async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

async fn admin() -> Response {
    file("text/html; charset=utf-8", ADMIN)
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => file(asset.content_type, asset.body),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The files change only with the binary; `no-cache` revalidates so a new build is seen at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        // A module imported by a file of the page but missing here would 404 in the browser.
        let sources = ASSETS.iter().map(|a| a.body).chain([INDEX, ADMIN]);
        for source in sources {
            for import in source.split("/assets/").skip(1) {
                let name: String = import.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.').collect();
                assert!(ASSETS.iter().any(|a| a.name == name), "/assets/{name} is referenced but not served");
            }
            for import in source.split("from './").skip(1) {
                let name: String = import.chars().take_while(|c| *c != '\'').collect();
                assert!(ASSETS.iter().any(|a| a.name == name), "./{name} is imported but not served");
            }
        }
    }
}
