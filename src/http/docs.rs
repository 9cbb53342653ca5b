//! Interactive API documentation at `/docs`: Swagger UI rendering
//! `/openapi.json`.
//!
//! The viewer's files are vendored under `assets/swagger-ui/` (version,
//! licence and checksums in its README) and compiled into the binary, so the
//! page needs no CDN and no build step. A strict Content-Security-Policy lets
//! the page load nothing but these files and talk to nothing but the vault.

use axum::{
    http::{header, HeaderName, HeaderValue},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

use super::AppState;

/// Only the vault's own scripts, styles and API; images may also be the
/// `data:` URIs of the viewer's stylesheet. No inline script, no eval, no
/// framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One file of the page.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

static ASSETS: [Asset; 4] = [
    Asset {
        path: "/docs",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../assets/docs/index.html"),
    },
    Asset {
        path: "/docs/docs.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/docs/docs.js"),
    },
    Asset {
        path: "/docs/swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
    },
    Asset {
        path: "/docs/swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
    },
];

/// `/docs` and its files.
pub fn router() -> Router<AppState> {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        router.route(asset.path, get(move || async move { serve(asset) }))
    })
}

fn serve(asset: &'static Asset) -> Response {
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        // The files change only with the binary.
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    (headers, asset.body).into_response()
}
