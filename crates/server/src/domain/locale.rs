//! The language of an invitation and a workspace's default: one of the
//! locales the mailer renders ([`Locale`]), stored and shown by its
//! canonical tag.

pub use wowchat_i18n::Locale;

/// A supported locale's tag in any case (`PT-br`, `pt_BR`); anything else
/// is refused with the supported tags listed.
pub fn parse(input: &str) -> Result<Locale, String> {
    Locale::from_tag(input).ok_or_else(|| {
        let supported: Vec<&str> = Locale::ALL.iter().map(|l| l.tag()).collect();
        format!(
            "is not a supported locale; use one of: {}",
            supported.join(", ")
        )
    })
}

/// Empty: `None` (the default applies); otherwise as [`parse`].
pub fn parse_optional(input: &str) -> Result<Option<Locale>, String> {
    if input.is_empty() {
        Ok(None)
    } else {
        parse(input).map(Some)
    }
}

/// Serde by tag, for the records kept as JSON (idempotent replays); a
/// record from before locales, or a tag no longer supported, reads as
/// English.
pub mod by_tag {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Locale;

    pub fn serialize<S: Serializer>(locale: &Locale, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(locale.tag())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Locale, D::Error> {
        let tag = String::deserialize(deserializer)?;
        Ok(Locale::from_tag_or_english(&tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_taken_in_any_case_and_kept_canonical() {
        assert_eq!(parse("PT-br").map(Locale::tag), Ok("pt-BR"));
        assert_eq!(parse("DE").map(Locale::tag), Ok("de"));
        assert_eq!(parse_optional(""), Ok(None));
        let refused = parse("xx").expect_err("not supported");
        assert!(
            refused.contains("en, de, fr, es, pt-BR, ja, ar"),
            "{refused}"
        );
        assert!(parse("de-AT").is_err(), "only what the mailer renders");
        assert_eq!(Locale::from_tag_or_english("gone"), Locale::English);
    }
}
