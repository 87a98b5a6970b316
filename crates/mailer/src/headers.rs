//! Header values that show what a person typed, and nothing else.
//!
//! lettre encodes a header word (RFC 2047) only when it holds a character
//! that may not appear raw; a word typed as `=?utf-8?b?QQ==?=` is plain
//! ASCII, so it would go out raw and every mail client would decode it into
//! different text, possibly with line breaks the one-line rule removed. A
//! value holding `=?` is therefore encoded whole: a client decodes it once
//! and shows the look-alike literally.

use email_encoding::headers::{rfc2047, writer::EmailWriter};
use lettre::message::{
    Mailbox,
    header::{HeaderName, HeaderValue},
};

/// Where every RFC 2047 encoded word starts.
const ENCODED_WORD_START: &str = "=?";

/// `Auto-Submitted: auto-generated` (RFC 3834): no vacation or
/// out-of-office reply should answer these emails.
pub fn auto_submitted() -> HeaderValue {
    HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".to_owned(),
    )
}

/// `List-Unsubscribe: <url>` (RFC 2369) for the one-click unsubscribe URL
/// (RFC 8058), as is: a serialized URL is ASCII without spaces or `<>`.
/// The operator's MTA must sign it with DKIM (RFC 8058 §4).
pub fn list_unsubscribe(url: &str) -> HeaderValue {
    let value = format!("<{url}>");
    HeaderValue::dangerous_new_pre_encoded(
        HeaderName::new_from_ascii_str("List-Unsubscribe"),
        value.clone(),
        value,
    )
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058 §3.1):
/// a mail client may unsubscribe with one POST of that body to the
/// `List-Unsubscribe` URL.
pub fn list_unsubscribe_post() -> HeaderValue {
    HeaderValue::new(
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click".to_owned(),
    )
}

/// The `Subject`, encoded whole when it could read as an encoded word.
pub fn subject(text: &str) -> HeaderValue {
    let name = HeaderName::new_from_ascii_str("Subject");
    if !text.contains(ENCODED_WORD_START) {
        return HeaderValue::new(name, text.to_owned());
    }
    let mut encoded = String::new();
    let written = {
        let mut writer = EmailWriter::new(&mut encoded, "Subject: ".len(), 0, false);
        rfc2047::encode(text, &mut writer)
    };
    match written {
        Ok(()) => HeaderValue::dangerous_new_pre_encoded(name, text.to_owned(), encoded),
        // Writing into a String does not fail; were it to, the text goes
        // out with lettre's own encoding rather than not at all.
        Err(_) => HeaderValue::new(name, text.to_owned()),
    }
}

/// A `To` or `Reply-To` of one mailbox whose display name could read as an
/// encoded word, with that name encoded whole; `None` when lettre's own
/// quoting already shows the name as typed.
pub fn mailbox(header: &'static str, mailbox: &Mailbox) -> Option<HeaderValue> {
    let display_name = mailbox.name.as_deref()?;
    if !display_name.contains(ENCODED_WORD_START) {
        return None;
    }
    let mut encoded = String::new();
    let written = {
        let mut writer = EmailWriter::new(&mut encoded, header.len() + ": ".len(), 0, false);
        rfc2047::encode(display_name, &mut writer).and_then(|()| {
            writer.space();
            std::fmt::Write::write_fmt(&mut writer, format_args!("<{}>", mailbox.email))
        })
    };
    written.ok().map(|()| {
        HeaderValue::dangerous_new_pre_encoded(
            HeaderName::new_from_ascii_str(header),
            mailbox.to_string(),
            encoded,
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn raw(value: &HeaderValue) -> String {
        let mut headers = lettre::message::header::Headers::new();
        headers.insert_raw(value.clone());
        headers.to_string()
    }

    #[test]
    fn a_subject_without_an_encoded_word_look_alike_is_left_to_lettre() {
        assert_eq!(raw(&subject("Hello Ivy")), "Subject: Hello Ivy\r\n");
    }

    #[test]
    fn an_encoded_word_look_alike_in_the_subject_is_itself_encoded() {
        let header = raw(&subject("=?utf-8?b?QQ==?= invited you"));
        assert!(header.starts_with("Subject: =?utf-8?b?"), "{header}");
        assert!(!header.contains("QQ==?= "), "{header}");
    }

    #[test]
    fn a_mailbox_with_a_plain_name_is_left_to_lettre() {
        let plain: Mailbox = "Olive Owner <olive@acme.example>".parse().unwrap();
        assert!(mailbox("Reply-To", &plain).is_none());
        let nameless: Mailbox = "olive@acme.example".parse().unwrap();
        assert!(mailbox("Reply-To", &nameless).is_none());
    }

    #[test]
    fn a_mailbox_name_like_an_encoded_word_is_encoded_and_keeps_the_address() {
        let tricky = Mailbox::new(
            Some("=?utf-8?b?QQ==?=".into()),
            "olive@acme.example".parse().unwrap(),
        );
        let header = raw(&mailbox("Reply-To", &tricky).unwrap());
        assert!(header.starts_with("Reply-To: =?utf-8?b?"), "{header}");
        assert!(header.ends_with(" <olive@acme.example>\r\n"), "{header}");
    }
}
