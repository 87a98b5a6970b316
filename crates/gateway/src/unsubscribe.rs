//! One-click unsubscribe (RFC 8058) at `/unsubscribe?token=<token>`: the
//! link in the footer and the `List-Unsubscribe` header of every invitation
//! email. A mail client (Gmail, Yahoo, Apple Mail) POSTs
//! `List-Unsubscribe=One-Click` to it, as `application/x-www-form-urlencoded`
//! or `multipart/form-data`, without cookies or credentials; that one POST
//! calls `UserService.Unsubscribe`. A GET (a person following the link, or a
//! scanner prefetching it) only shows a page whose button makes that same
//! POST: a GET never unsubscribes.
//!
//! The pages are plain HTML without script or style, served with a CSP that
//! allows nothing but the form posting back here, no framing, and no
//! referrer (the URL holds the token). The token is never logged.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use tonic::Code;
use wowchat_i18n::escape_html;
use wowchat_users_api::v1::{self as proto, user_service_client::UserServiceClient};

use crate::{Shared, call_typed, client_address::ClientAddress, read_body};

/// The field and value of an RFC 8058 one-click POST body.
const ONE_CLICK_KEY: &str = "List-Unsubscribe";
const ONE_CLICK_VALUE: &str = "One-Click";

/// The page a link opens: what the button does, and the button.
pub(crate) async fn page(uri: Uri) -> Response {
    let Some(token) = token_of(&uri) else {
        return html(StatusCode::BAD_REQUEST, &missing_token());
    };
    html(StatusCode::OK, &confirmation(&token))
}

/// The one-click POST (a mail client's, or the page's button): unsubscribes
/// the address of the token, for every workspace.
pub(crate) async fn submit(
    State(shared): State<Arc<Shared>>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    let Some(token) = token_of(&uri) else {
        return html(StatusCode::BAD_REQUEST, &missing_token());
    };
    let body = match read_body(&shared, body).await {
        Ok(body) => body,
        Err(_) => return html(StatusCode::BAD_REQUEST, &not_one_click()),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !is_one_click(content_type, &body) {
        return html(StatusCode::BAD_REQUEST, &not_one_click());
    }
    // Unsubscribing twice changes nothing: safe to try on another replica.
    let answered = call_typed(&shared, &headers, client, true, |channel, metadata| {
        let token = token.clone();
        async move {
            let request = tonic::Request::from_parts(
                metadata,
                Default::default(),
                proto::UnsubscribeRequest { token },
            );
            UserServiceClient::new(channel).unsubscribe(request).await
        }
    })
    .await;
    match answered {
        Ok(answer) => html(StatusCode::OK, &unsubscribed(&answer.email)),
        Err(status) if status.code() == Code::InvalidArgument => {
            html(StatusCode::BAD_REQUEST, &invalid_link())
        }
        Err(status) => {
            tracing::warn!(code = ?status.code(), "unsubscribe failed");
            html(StatusCode::SERVICE_UNAVAILABLE, &try_later())
        }
    }
}

/// The `token` of the query, if there is a non-empty one.
fn token_of(uri: &Uri) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value.trim().to_owned())
        .filter(|token| !token.is_empty())
}

/// Whether `body` says `List-Unsubscribe=One-Click` in one of the two
/// encodings RFC 8058 §3.2 allows (the value compared ignoring case).
fn is_one_click(content_type: &str, body: &[u8]) -> bool {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/x-www-form-urlencoded" => form_urlencoded::parse(body).any(|(key, value)| {
            key == ONE_CLICK_KEY && value.trim().eq_ignore_ascii_case(ONE_CLICK_VALUE)
        }),
        "multipart/form-data" => boundary_of(content_type)
            .is_some_and(|boundary| multipart_has_one_click(&boundary, body)),
        _ => false,
    }
}

/// The `boundary` parameter of a multipart content type, unquoted.
fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|boundary| !boundary.is_empty())
    })
}

/// Whether a `multipart/form-data` body has a part named `List-Unsubscribe`
/// whose value is `One-Click`.
fn multipart_has_one_click(boundary: &str, body: &[u8]) -> bool {
    let Ok(body) = std::str::from_utf8(body) else {
        return false;
    };
    let delimiter = format!("--{boundary}");
    body.split(delimiter.as_str()).any(|part| {
        let part = part.trim_start_matches("\r\n").trim_start_matches('\n');
        let Some((head, value)) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))
        else {
            return false;
        };
        let named = head.lines().any(|line| {
            let line = line.to_ascii_lowercase();
            line.starts_with("content-disposition:")
                && line.contains("form-data")
                && line.contains(&format!("name=\"{}\"", ONE_CLICK_KEY.to_ascii_lowercase()))
        });
        named && value.trim().eq_ignore_ascii_case(ONE_CLICK_VALUE)
    })
}

/// A page with the headers every page here carries: nothing may load, run
/// or frame it, the form may post only back here, no referrer leaves.
fn html(status: StatusCode, body: &str) -> Response {
    let mut response = (status, body.to_owned()).into_response();
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The whole page around `content`.
fn document(title: &str, content: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>{title}</title>\n</head>\n\
         <body>\n<main>\n<h1>{title}</h1>\n{content}</main>\n</body>\n</html>\n"
    )
}

fn confirmation(token: &str) -> String {
    let action = format!(
        "?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .finish()
    );
    document(
        "Stop WowChat invitations?",
        &format!(
            "<p>No workspace on WowChat will send invitation emails to your address any more. \
             Nothing happens until you press the button.</p>\n\
             <form method=\"post\" action=\"{}\">\n\
             <input type=\"hidden\" name=\"{ONE_CLICK_KEY}\" value=\"{ONE_CLICK_VALUE}\">\n\
             <button type=\"submit\">Don't send me WowChat invitations</button>\n\
             </form>\n",
            escape_html(&action)
        ),
    )
}

fn unsubscribed(email: &str) -> String {
    document(
        "You are unsubscribed",
        &format!(
            "<p>WowChat will not send invitation emails to <strong>{}</strong> again, from any \
             workspace.</p>\n<p>You can close this page.</p>\n",
            escape_html(email)
        ),
    )
}

fn missing_token() -> String {
    document(
        "This link is incomplete",
        "<p>The unsubscribe link has no token. Open the link from the invitation email \
         again, whole.</p>\n",
    )
}

fn invalid_link() -> String {
    document(
        "This link does not work",
        "<p>The unsubscribe link was altered, cut short, or is more than a year old; nothing \
         changed. Open the link from the invitation email again, whole, or the one of a newer \
         invitation email.</p>\n",
    )
}

fn not_one_click() -> String {
    document(
        "Not an unsubscribe request",
        "<p>This address takes a one-click unsubscribe request \
         (<code>List-Unsubscribe=One-Click</code>, RFC 8058); nothing changed.</p>\n",
    )
}

fn try_later() -> String {
    document(
        "Please try again later",
        "<p>WowChat could not record your request just now; nothing changed. Please try \
         again in a few minutes.</p>\n",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_two_one_click_bodies_of_rfc_8058_are_understood_and_nothing_else() {
        let form = "application/x-www-form-urlencoded";
        assert!(is_one_click(form, b"List-Unsubscribe=One-Click"));
        assert!(is_one_click(
            "application/x-www-form-urlencoded; charset=UTF-8",
            b"List-Unsubscribe=One-Click"
        ));
        assert!(!is_one_click(form, b""));
        assert!(!is_one_click(form, b"List-Unsubscribe=Later"));
        assert!(!is_one_click("text/plain", b"List-Unsubscribe=One-Click"));
        assert!(!is_one_click("", b"List-Unsubscribe=One-Click"));

        let multipart = "multipart/form-data; boundary=----abc";
        let body = "------abc\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n\
                    One-Click\r\n------abc--\r\n";
        assert!(is_one_click(multipart, body.as_bytes()));
        let quoted = "multipart/form-data; boundary=\"----abc\"";
        assert!(is_one_click(quoted, body.as_bytes()));
        assert!(!is_one_click("multipart/form-data", body.as_bytes()));
        let other = body.replace("List-Unsubscribe", "Other");
        assert!(!is_one_click(multipart, other.as_bytes()));
    }

    #[test]
    fn the_token_comes_from_the_query_and_goes_back_in_the_forms_action_escaped() {
        let uri: Uri = "/unsubscribe?token=AbC-_1&x=1".parse().unwrap();
        assert_eq!(token_of(&uri).as_deref(), Some("AbC-_1"));
        assert_eq!(token_of(&"/unsubscribe".parse().unwrap()), None);
        assert_eq!(token_of(&"/unsubscribe?token=".parse().unwrap()), None);
        let page = confirmation("a\"b<c>&d");
        assert!(
            page.contains("action=\"?token=a%22b%3Cc%3E%26d\""),
            "{page}"
        );
        assert!(!page.contains("<script"));
        assert!(unsubscribed("<b>@example.com").contains("&lt;b&gt;@example.com"));
    }
}
