//! The browser application (`web/`, built by `build/web.rs`), embedded in the binary and served at
//! `/`: files by name with their content type, and `index.html` for any other page path so that
//! the application's own URLs (permalinks) load directly. Hashed files under `assets/` are cached
//! for a year; `index.html` is never cached, so a new version is picked up at the next load.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use rust_embed::RustEmbed;

use super::error::ApiError;

#[derive(RustEmbed)]
#[folder = "$ELSE_WEB_DIST"]
struct Dist;

const INDEX: &str = "index.html";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For un-hashed files beside index.html (favicon): short, and revalidated by ETag.
const SHORT: &str = "public, max-age=3600";
/// The application loads only its own scripts and styles; reports render in a same-origin frame.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; object-src 'none'; \
                   base-uri 'self'; form-action 'self'; frame-ancestors 'self'";

/// The fallback of the whole router: anything no API route took.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().fallback(serve)
}

async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    // An unknown API path is an API error, not a page: clients get JSON, never index.html.
    if is_server_path(path) {
        return ApiError::new(StatusCode::NOT_FOUND, format!("no such endpoint: {path}")).into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "only GET and HEAD here\n",
        )
            .into_response();
    }
    let name = path.trim_start_matches('/');
    let (name, file) = match Dist::get(name).filter(|_| !name.is_empty()) {
        Some(file) => (name, file),
        // A missing file (a stale hashed asset, /robots.txt) is a 404: answering it with the HTML
        // page would hand a browser HTML where it expects a script.
        None if looks_like_file(name) => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
        None => match Dist::get(INDEX) {
            Some(file) => (INDEX, file),
            None => return (StatusCode::NOT_FOUND, "the web application is not built in\n").into_response(),
        },
    };

    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let cache = if name == INDEX {
        "no-cache"
    } else if name.starts_with("assets/") {
        IMMUTABLE
    } else {
        SHORT
    };
    let mut response = if etag_matches(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = if method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(file.data.into_owned())
        };
        let mut response = Response::new(body);
        let mime = file.metadata.mimetype();
        let mime = if mime.starts_with("text/") || mime.ends_with("javascript") || mime.ends_with("svg+xml") {
            format!("{mime}; charset=utf-8")
        } else {
            mime.to_string()
        };
        if let Ok(value) = HeaderValue::from_str(&mime) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if name == INDEX {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    }
    response
}

/// Paths the server itself answers (API, health, metrics): never the application's pages.
fn is_server_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/healthz" || path == "/metrics"
}

/// The last segment has an extension: a request for a file, not an application page.
fn looks_like_file(name: &str) -> bool {
    name.rsplit('/').next().is_some_and(|last| last.contains('.'))
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|candidate| {
            let candidate = candidate.trim();
            candidate == "*" || candidate.trim_start_matches("W/") == etag
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = Request::get(path);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        routes::<()>()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn header_of<'a>(response: &'a Response, name: &str) -> &'a str {
        response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    async fn text(response: Response) -> String {
        String::from_utf8(to_bytes(response.into_body(), 1 << 24).await.unwrap().to_vec()).unwrap()
    }

    /// The embedded index.html names its hashed script; that script must be served as such.
    fn script_of(index: &str) -> String {
        let start = index.find("/assets/").expect("index.html names an asset");
        let end = index[start..].find('"').unwrap() + start;
        index[start..end].to_string()
    }

    #[tokio::test]
    async fn index_is_served_uncached_at_the_root_and_for_application_paths() {
        for path in ["/", "/search?q=abc", "/messages/42", "/admin/users"] {
            let response = get(path, &[]).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(
                header_of(&response, "content-type"),
                "text/html; charset=utf-8",
                "{path}"
            );
            assert_eq!(header_of(&response, "cache-control"), "no-cache", "{path}");
            assert!(header_of(&response, "content-security-policy").contains("default-src 'self'"));
            let body = text(response).await;
            assert!(body.contains("<div id=\"app\">"), "{path}: {body}");
        }
    }

    #[tokio::test]
    async fn hashed_assets_have_their_type_and_a_long_cache() {
        let index = text(get("/", &[]).await).await;
        let script = script_of(&index);
        assert!(script.ends_with(".js"), "{script}");
        let response = get(&script, &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header_of(&response, "content-type"), "text/javascript; charset=utf-8");
        assert_eq!(header_of(&response, "cache-control"), IMMUTABLE);
        let etag = header_of(&response, "etag").to_string();
        assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
        assert!(!text(response).await.is_empty());

        let again = get(&script, &[("if-none-match", &etag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert!(text(again).await.is_empty());

        let css = index.find(".css").map(|end| {
            let start = index[..end].rfind("/assets/").unwrap();
            index[start..end + 4].to_string()
        });
        let css = css.expect("index.html links a stylesheet");
        assert_eq!(
            header_of(&get(&css, &[]).await, "content-type"),
            "text/css; charset=utf-8"
        );
    }

    #[tokio::test]
    async fn missing_files_and_api_paths_are_not_answered_with_the_page() {
        let response = get("/assets/index-0000.js", &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(get("/robots.txt", &[]).await.status(), StatusCode::NOT_FOUND);

        let response = get("/api/v1/no-such-thing", &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(header_of(&response, "content-type"), "application/json");
        let body: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
        assert!(body["error"].as_str().unwrap().contains("/api/v1/no-such-thing"));
    }

    #[tokio::test]
    async fn only_get_and_head() {
        let response = routes::<()>()
            .oneshot(Request::post("/search").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let head = routes::<()>()
            .oneshot(Request::head("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        assert!(text(head).await.is_empty());
    }
}
