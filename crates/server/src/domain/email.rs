//! Email addresses: validated once, stored as typed, compared normalized.

use serde::{Deserialize, Serialize};

/// A valid email address. `typed` keeps the caller's spelling (trimmed);
/// `normalized` (lowercased) is what identifies a person in a workspace, so
/// `Alice@Example.com` and ` alice@example.com` are the same person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    typed: String,
    normalized: String,
}

impl EmailAddress {
    pub const MAX_LEN: usize = 254;

    pub fn parse(input: &str) -> Result<Self, String> {
        let typed = input.trim();
        if typed.is_empty() {
            return Err("must not be empty".into());
        }
        if typed.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} bytes", Self::MAX_LEN));
        }
        let options = email_address::Options::default()
            .without_display_text()
            .without_domain_literal()
            .with_required_tld();
        email_address::EmailAddress::parse_with_options(typed, options)
            .map_err(|_| "is not a valid email address".to_string())?;
        Ok(Self {
            typed: typed.to_owned(),
            normalized: Self::normalize(typed),
        })
    }

    /// The key two spellings of one address share.
    pub fn normalize(input: &str) -> String {
        input.trim().to_lowercase()
    }

    pub fn as_typed(&self) -> &str {
        &self.typed
    }

    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_address_normalize_alike() {
        let a = EmailAddress::parse("Alice@Example.com").expect("valid");
        let b = EmailAddress::parse(" alice@example.com").expect("valid");
        assert_eq!(a.normalized(), b.normalized());
        assert_eq!(a.as_typed(), "Alice@Example.com");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "   ",
            "alice",
            "alice@",
            "@example.com",
            "Alice <alice@example.com>",
            "alice@[127.0.0.1]",
            "alice@localhost",
            "a\u{0}b@example.com",
        ] {
            assert!(
                EmailAddress::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(EmailAddress::parse(&long).is_err());
    }
}
