//! The one vendored stylesheet, compiled into the binary and served under
//! `/static/` (a prefix the privacy page shares). Its URL carries a hash of
//! its content, so browsers may keep it for a year and still get a new one
//! the moment a release changes it.

use std::sync::OnceLock;

use axum::{
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};

/// Where the stylesheet is served.
pub const CSS_PATH: &str = "/static/arkku.css";

const CSS: &str = include_str!("static/arkku.css");

/// The stylesheet's URL with its content hash (`?v=` and 16 hex digits).
pub fn css_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let digest = ring::digest::digest(&ring::digest::SHA256, CSS.as_bytes());
        let hex: String = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{CSS_PATH}?v={hex}")
    })
}

/// `GET /static/arkku.css`.
pub async fn css() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        CSS,
    )
        .into_response()
}
