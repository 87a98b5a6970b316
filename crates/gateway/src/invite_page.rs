//! The invitation page the email links to: `GET /invite`, with the token in
//! the URL's fragment (`/invite#token=…`), which a browser never sends, so
//! it reaches no server log, proxy or `Referer`. The page previews the
//! invitation (`POST /v1/invitations:preview`) and accepts it
//! (`POST /v1/invitations:accept`) through this same gateway.
//!
//! Its HTML, CSS and script are embedded in the binary (`invite_page/`): no
//! third-party asset, no CDN. Every word the page shows is a message of the
//! page catalog (`crates/i18n/locales/<locale>/page.ftl`), in the locale the
//! browser asks for (`Accept-Language`, or `?lang=`): the HTML's fixed words
//! are filled in here once at start for every locale (`{{msg:<id>}}`), and
//! the catalog goes into the page whole for the script's words, each
//! placeholder as `{name}`. Once the script has read the invitation, it
//! reloads the page in the invitation's own locale if that differs.
//!
//! Every response of the page carries [`SECURITY_HEADERS`]: a strict
//! Content-Security-Policy, no referrer, no framing, no sniffing, no caching.
//! The page is no API route: it stays out of the OpenAPI document.

use std::sync::Arc;

use anyhow::{Context, bail};
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};
use wowchat_i18n::{Args, Catalog, Locale, Part, escape_html};

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

/// The page as served in each locale (`Locale::ALL`'s order): the HTML with
/// its words, the app's URL and the catalog filled in. Rendered once as
/// `Bytes`, so each request shares it instead of copying it.
struct Page {
    html: Vec<Bytes>,
}

/// The routes of the page and its assets, for any router state.
pub fn router<S: Clone + Send + Sync + 'static>(app_url: &str) -> anyhow::Result<Router<S>> {
    let html = Locale::ALL
        .into_iter()
        .map(|locale| render(app_url, locale).map(Bytes::from))
        .collect::<anyhow::Result<_>>()?;
    let page = Arc::new(Page { html });
    Ok(Router::new()
        .route(PATH, get(index))
        .route("/invite/page.css", get(style))
        .route("/invite/page.js", get(script))
        .with_state(page))
}

/// The page catalog in `locale` as the script reads it: every message by
/// id, each text placeholder written `{name}` for the script to fill.
pub fn messages(locale: Locale) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let catalog = Catalog::page();
    let mut messages = serde_json::Map::new();
    for (id, variables) in catalog.messages() {
        let args = variables
            .iter()
            .fold(Args::new(), |args, name| args.text(name, ""));
        let text: String = catalog
            .format_parts(locale, id, &args)?
            .into_iter()
            .map(|part| match part {
                Part::Words(words) => words,
                Part::Value(name) => format!("{{{name}}}"),
            })
            .collect();
        messages.insert(id.clone(), text.into());
    }
    Ok(messages)
}

/// The HTML in `locale` with every placeholder filled: `{{lang}}` and
/// `{{dir}}` with the locale's tag and direction, `{{msg:<id>}}` with the
/// catalog's words (escaped), `{{app_url}}` with the "open WowChat" URL,
/// `{{messages}}` with the catalog as JSON safe inside a `<script>` element.
fn render(app_url: &str, locale: Locale) -> anyhow::Result<String> {
    let app_url = check_app_url(app_url)?;
    let catalog = messages(locale)?;
    let mut html = String::with_capacity(INDEX.len() * 2);
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
                    .with_context(|| format!("the page catalog has no `{id}`"))?;
                html.push_str(&escape_html(text));
            }
            None if name == "lang" => html.push_str(locale.tag()),
            None if name == "dir" => html.push_str(locale.direction()),
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

fn respond(content_type: &'static str, body: Bytes) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name.clone(), HeaderValue::from_static(value));
    }
    response
}

/// The page in the locale `?lang=` names, else the one the browser's
/// `Accept-Language` prefers, else English.
async fn index(State(page): State<Arc<Page>>, uri: Uri, headers: HeaderMap) -> Response {
    let asked = uri.query().and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "lang")
            .and_then(|(_, tag)| Locale::nearest(&tag))
    });
    let locale = asked.unwrap_or_else(|| {
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|value| value.to_str().ok())
            .map_or(Locale::English, Locale::negotiate)
    });
    // A reference count, not a copy of the page.
    let mut response = respond(
        "text/html; charset=utf-8",
        page.html[locale.index()].clone(),
    );
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-language"));
    response
}

async fn style() -> Response {
    respond(
        "text/css; charset=utf-8",
        Bytes::from_static(STYLE.as_bytes()),
    )
}

async fn script() -> Response {
    respond(
        "text/javascript; charset=utf-8",
        Bytes::from_static(SCRIPT.as_bytes()),
    )
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
            serde_json::Value::Object(messages(Locale::English).unwrap())
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
        let catalog = messages(Locale::English).unwrap();
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
            asked.push(format!("error-{reason}-heading"));
            asked.push(format!("error-{reason}-body"));
        }
        assert!(asked.len() > 20, "{asked:?}");
        for id in &asked {
            if id.ends_with('-') {
                continue; // "error-" + reason, counted above
            }
            assert!(catalog.contains_key(id), "page.ftl lacks `{id}`");
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

    #[tokio::test]
    async fn the_page_is_in_the_language_asked_for_and_arabic_runs_right_to_left() {
        let router: Router = router("https://app.example.com/").unwrap();
        let get = |path: &str, language: &str| {
            let request = Request::get(path)
                .header(header::ACCEPT_LANGUAGE, language)
                .body(Body::empty())
                .unwrap();
            router.clone().oneshot(request)
        };
        for (path, language, expected) in [
            ("/invite", "de-AT, en;q=0.5", Locale::German),
            ("/invite", "ko, ja;q=0.8", Locale::Japanese),
            ("/invite", "ko", Locale::English),
            ("/invite?lang=ar", "de", Locale::Arabic),
            ("/invite?lang=pt-br", "", Locale::BrazilianPortuguese),
            ("/invite?lang=xx", "fr", Locale::French),
        ] {
            let response = get(path, language).await.unwrap();
            assert_eq!(response.headers()[header::VARY], "accept-language");
            let html = body(response).await;
            let root = format!(
                "<html lang=\"{}\" dir=\"{}\">",
                expected.tag(),
                expected.direction()
            );
            assert!(html.contains(&root), "{path} {language}: {}", &html[..80]);
            let title = messages(expected).unwrap()["page-title"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(html.contains(&format!("<title>{title}</title>")), "{path}");
        }
        // Every locale's catalog has the words the script fills in, with
        // the script's `{name}` placeholders.
        for locale in Locale::ALL {
            let words = messages(locale).unwrap();
            assert!(
                words["invite-heading"]
                    .as_str()
                    .unwrap()
                    .contains("{workspace}")
            );
            if locale != Locale::English {
                assert_ne!(
                    words["form-submit"],
                    messages(Locale::English).unwrap()["form-submit"]
                );
            }
        }
    }

    #[test]
    fn the_app_url_must_be_http_and_is_escaped() {
        assert!(check_app_url("javascript:alert(1)").is_err());
        assert!(check_app_url("/relative").is_err());
        assert!(check_app_url("https://app.example.com/").is_ok());
        let html = render("https://app.example.com/?a=1&b=2", Locale::English).unwrap();
        assert!(html.contains("href=\"https://app.example.com/?a=1&amp;b=2\""));
    }
}
