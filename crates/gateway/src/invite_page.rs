//! The invitation page the email links to: `GET /invite`, with the token in
//! the URL's fragment (`/invite#token=…`), which a browser never sends, so
//! it reaches no server log, proxy or `Referer`. The page previews the
//! invitation (`POST /v1/invitations:preview`) and accepts it
//! (`POST /v1/invitations:accept`) through this same gateway.
//!
//! Its HTML, CSS, script and message catalog are embedded in the binary
//! (`invite_page/`): no third-party asset, no CDN. Every word the page shows
//! is in one table, `invite_page/messages.json`, keyed by message id: the
//! HTML's fixed words are filled in here once at start (`{{msg:<id>}}`),
//! and the catalog goes into the page whole for the script's words.
//!
//! Every response of the page carries [`SECURITY_HEADERS`]: a strict
//! Content-Security-Policy, no referrer, no framing, no sniffing, no caching.
//! The page is no API route: it stays out of the OpenAPI document.

use std::sync::Arc;

use anyhow::{Context, bail};
use axum::{
    Router,
    extract::State,
    http::{HeaderName, HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// Where the page is served; its assets are under `/invite/`.
pub const PATH: &str = "/invite";

/// The page's policy: its own script, style and REST calls, nothing else;
/// never framed; no `<base>`; forms post only to this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

/// The headers of every response of the page and its assets.
pub const SECURITY_HEADERS: &[(HeaderName, &str)] = &[
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::CACHE_CONTROL, "no-store"),
];

const INDEX: &str = include_str!("../invite_page/index.html");
const STYLE: &str = include_str!("../invite_page/page.css");
const SCRIPT: &str = include_str!("../invite_page/page.js");
/// Every user-visible string of the page, by message id.
pub const MESSAGES: &str = include_str!("../invite_page/messages.json");

/// The page as served: the HTML with its words, the app's URL and the
/// catalog filled in.
struct Page {
    html: String,
}

/// The routes of the page and its assets, for any router state.
pub fn router<S: Clone + Send + Sync + 'static>(app_url: &str) -> anyhow::Result<Router<S>> {
    let page = Arc::new(Page {
        html: render(app_url)?,
    });
    Ok(Router::new()
        .route(PATH, get(index))
        .route("/invite/page.css", get(style))
        .route("/invite/page.js", get(script))
        .with_state(page))
}

/// The HTML with every placeholder filled: `{{msg:<id>}}` with the
/// catalog's words (escaped), `{{app_url}}` with the "open WowChat" URL,
/// `{{messages}}` with the catalog as JSON safe inside a `<script>` element.
fn render(app_url: &str) -> anyhow::Result<String> {
    let app_url = check_app_url(app_url)?;
    let catalog: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(MESSAGES).context("invite_page/messages.json is not a JSON object")?;
    let mut html = String::with_capacity(INDEX.len() + MESSAGES.len());
    let mut rest = INDEX;
    while let Some(start) = rest.find("{{") {
        html.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .context("invite_page/index.html: an unclosed {{")?;
        let name = &after[..end];
        match name.strip_prefix("msg:") {
            Some(id) => {
                let text = catalog
                    .get(id)
                    .and_then(serde_json::Value::as_str)
                    .with_context(|| format!("invite_page/messages.json has no `{id}`"))?;
                html.push_str(&escape_html(text));
            }
            None if name == "app_url" => html.push_str(&escape_html(app_url)),
            None if name == "messages" => {
                let json = serde_json::to_string(&catalog)?;
                // No `</script>` or `<!--` can end or bend the element.
                html.push_str(
                    &json
                        .replace('<', "\\u003c")
                        .replace('>', "\\u003e")
                        .replace('&', "\\u0026"),
                );
            }
            None => bail!("invite_page/index.html: unknown placeholder {{{{{name}}}}}"),
        }
        rest = &after[end + 2..];
    }
    html.push_str(rest);
    Ok(html)
}

/// The "open WowChat" URL: absolute http(s), as a browser follows it.
pub fn check_app_url(url: &str) -> anyhow::Result<&str> {
    let url = url.trim();
    let parsed = url.parse::<axum::http::Uri>().ok();
    let valid = parsed.as_ref().is_some_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
    });
    if !valid {
        bail!(
            "WOWCHAT_GATEWAY_APP_URL: `{url}` is not an http(s) URL (e.g. https://app.example.com/)"
        );
    }
    Ok(url)
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

fn respond(content_type: &'static str, body: String) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name.clone(), HeaderValue::from_static(value));
    }
    response
}

async fn index(State(page): State<Arc<Page>>) -> Response {
    respond("text/html; charset=utf-8", page.html.clone())
}

async fn style() -> Response {
    respond("text/css; charset=utf-8", STYLE.to_owned())
}

async fn script() -> Response {
    respond("text/javascript; charset=utf-8", SCRIPT.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::{body::Body, http::Request};
    use tower::ServiceExt;

    use super::*;

    async fn get_path(path: &str) -> Response {
        let router: Router = router("https://app.example.com/").unwrap();
        router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_page_and_its_assets_carry_the_security_headers() {
        for (path, content_type) in [
            ("/invite", "text/html; charset=utf-8"),
            ("/invite/page.css", "text/css; charset=utf-8"),
            ("/invite/page.js", "text/javascript; charset=utf-8"),
        ] {
            let response = get_path(path).await;
            assert_eq!(response.status(), 200, "{path}");
            let headers = response.headers();
            assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
            assert_eq!(
                headers[header::CONTENT_SECURITY_POLICY],
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                 frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
                "{path}"
            );
            assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{path}");
            assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{path}");
        }
    }

    #[tokio::test]
    async fn the_page_holds_its_words_the_app_url_and_the_catalog_and_nothing_from_elsewhere() {
        let html = body(get_path("/invite").await).await;
        assert!(!html.contains("{{"), "a placeholder is left: {html}");
        assert!(html.contains("<title>Accept your invitation · WowChat</title>"));
        assert!(html.contains("href=\"https://app.example.com/\""));
        // The catalog is whole and parses, inside its data block.
        let start = html.find("id=\"messages\">").unwrap() + "id=\"messages\">".len();
        let end = start + html[start..].find("</script>").unwrap();
        let catalog: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
        assert_eq!(
            catalog,
            serde_json::from_str::<serde_json::Value>(MESSAGES).unwrap()
        );
        // Every script and style is the page's own file: no inline code, no
        // other origin.
        for asset in [&html, STYLE, SCRIPT] {
            let without_app_url = asset.replace("https://app.example.com/", "");
            assert!(!without_app_url.contains("http://"));
            assert!(!without_app_url.contains("https://"));
            assert!(!without_app_url.contains("//cdn"));
            assert!(!asset.contains(" style=\""));
        }
        assert_eq!(html.matches("<script").count(), 2);
        assert!(html.contains("<script src=\"invite/page.js\" defer></script>"));
        assert!(html.contains("<script type=\"application/json\" id=\"messages\">"));
    }

    #[test]
    fn every_message_the_script_asks_for_is_in_the_catalog() {
        let catalog: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(MESSAGES).unwrap();
        let mut asked = Vec::new();
        let mut rest = SCRIPT;
        while let Some(at) = rest.find("t(\"") {
            // `t(` alone, not the end of `get(` or `.set(`.
            let call = rest[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
            let id = &rest[at + 3..];
            let id = &id[..id.find('"').unwrap()];
            if call {
                asked.push(id.to_owned());
            }
            rest = &rest[at + 3..];
        }
        // The refusals' words are looked up by reason.
        for reason in [
            "INVITATION_NOT_FOUND",
            "INVITATION_EXPIRED",
            "INVITATION_REVOKED",
            "INVITATION_ALREADY_ACCEPTED",
            "USER_ALREADY_MEMBER",
            "INVITER_NOT_AUTHORIZED",
            "SEAT_LIMIT_REACHED",
            "USER_ACCESS_EXPIRED",
            "INVITATION_ATTEMPTS_EXCEEDED",
        ] {
            assert!(SCRIPT.contains(&format!("\"{reason}\"")), "{reason}");
            asked.push(format!("error.{reason}.heading"));
            asked.push(format!("error.{reason}.body"));
        }
        assert!(asked.len() > 20, "{asked:?}");
        for id in &asked {
            if id.ends_with('.') {
                continue; // "error." + reason, counted above
            }
            assert!(catalog.contains_key(id), "messages.json lacks `{id}`");
        }
        // No words of its own: the script's string literals are ids, names
        // and code, never sentences.
        let code = SCRIPT
            .lines()
            .filter(|l| !l.trim_start().starts_with("//") && l.trim() != "\"use strict\";");
        for line in code {
            for literal in line.split('"').skip(1).step_by(2) {
                assert!(
                    !literal.contains(' ') || literal.starts_with('{'),
                    "words in the script: {literal:?} in {line}"
                );
            }
        }
    }

    #[test]
    fn the_app_url_must_be_http_and_is_escaped() {
        assert!(check_app_url("javascript:alert(1)").is_err());
        assert!(check_app_url("/relative").is_err());
        assert!(check_app_url("https://app.example.com/").is_ok());
        let html = render("https://app.example.com/?a=1&b=2").unwrap();
        assert!(html.contains("href=\"https://app.example.com/?a=1&amp;b=2\""));
    }
}
