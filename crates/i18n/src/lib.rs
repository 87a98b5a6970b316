//! The words WowChat shows people, in their language: the emails and the
//! invitation page.
//!
//! - [`Locale`]: the languages WowChat speaks, parsed from and negotiated
//!   against BCP 47 tags, with their writing direction.
//! - [`Catalog`]: Fluent catalogs (`locales/<tag>/<domain>.ftl`, files a
//!   translator edits), embedded in the binary. A unit test holds every
//!   locale to English's messages, attributes and placeholders, so a
//!   missing or misspelt translation fails CI, not an email.
//! - [`dates`]: a moment as the locale writes it, from CLDR's data
//!   (ICU4X), never a hand-written format.

mod catalog;
pub mod dates;
mod locale;

pub use catalog::{Args, Catalog, FormatError, Part, Shape};
pub use locale::Locale;

/// Text for HTML, in an element or a quoted attribute: the five characters
/// that could start markup or end an attribute, escaped. The one escaper of
/// the emails and the gateway's pages.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_five_characters_of_markup_are_escaped_and_nothing_else() {
        assert_eq!(
            super::escape_html(r#"<a href="x" title='y'>Q&A — ようこそ</a>"#),
            "&lt;a href=&quot;x&quot; title=&#x27;y&#x27;&gt;Q&amp;A — ようこそ&lt;/a&gt;"
        );
    }
}
