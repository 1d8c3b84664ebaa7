//! The CSS, JavaScript and images in `web/`, embedded in the binary
//! (rust-embed, also in debug builds) and served under `/assets/`. Pages
//! link them with `?v=<content hash>`, so a new build busts caches and the
//! old URLs can be cached forever.

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "web/"]
struct Web;

fn version_of(path: &str) -> Option<String> {
    Web::get(path).map(|f| {
        f.metadata.sha256_hash()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// The URL of an asset, with its content hash. Names a file that must exist
/// in `web/` (a test checks every link).
pub fn url(path: &str) -> String {
    match version_of(path) {
        Some(v) => format!("/assets/{path}?v={v}"),
        None => format!("/assets/{path}"),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

pub async fn serve(Path(path): Path<String>, RawQuery(query): RawQuery) -> Response {
    let Some(file) = Web::get(&path) else {
        return crate::http::error::AppError::NotFound.into_response();
    };
    let current = version_of(&path);
    let asked = query.as_deref().and_then(|q| q.strip_prefix("v="));
    let cache = if asked.is_some() && asked == current.as_deref() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(&path)),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        file.data.into_owned(),
    )
        .into_response()
}
