//! A workspace's invitation settings: the seat limit and the email domains
//! invitees may have.

use serde::{Deserialize, Serialize};

use super::{EmailAddress, locale::Locale};

/// The settings as stored and as set, already valid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceSettings {
    /// The most seats (active users plus pending invitations); 0 for no limit.
    pub seat_limit: u32,
    /// Lowercase domains, sorted and without duplicates; empty for any.
    pub allowed_email_domains: Vec<String>,
    /// The role a directory gives when no group says otherwise.
    pub directory_default_role: String,
    /// Whether anyone may ask to join directly.
    #[serde(default)]
    pub accept_join_requests: bool,
    /// The language of invitations sent without one, and of the emails
    /// that have no invitation to take it from.
    #[serde(default, with = "super::locale::by_tag")]
    pub default_locale: Locale,
}

/// A parsed UpdateWorkspaceSettings: the new settings, and the version the
/// caller read them at (their etag), if it sent one.
#[derive(Debug, Clone)]
pub struct SettingsUpdate {
    pub settings: WorkspaceSettings,
    pub expected_version: Option<i64>,
}

impl WorkspaceSettings {
    pub const MAX_SEATS: u32 = 1_000_000;
    pub const MAX_DOMAINS: usize = 100;

    pub fn parse_seat_limit(input: i32) -> Result<u32, String> {
        u32::try_from(input)
            .ok()
            .filter(|n| *n <= Self::MAX_SEATS)
            .ok_or_else(|| format!("must be from 0 to {}", Self::MAX_SEATS))
    }

    /// Lowercased, deduplicated and sorted; each a plain domain name
    /// (`example.com`, no `@`).
    pub fn parse_domains(input: &[String]) -> Result<Vec<String>, String> {
        if input.len() > Self::MAX_DOMAINS {
            return Err(format!("must hold at most {} domains", Self::MAX_DOMAINS));
        }
        let mut domains = input
            .iter()
            .map(|raw| super::mail_domain::parse_domain_name(raw))
            .collect::<Result<Vec<_>, _>>()?;
        domains.sort();
        domains.dedup();
        Ok(domains)
    }

    /// Whether the settings let this address be invited.
    pub fn allows_email(&self, email: &EmailAddress) -> bool {
        if self.allowed_email_domains.is_empty() {
            return true;
        }
        let domain = super::mail_domain::domain_of(email);
        self.allowed_email_domains.iter().any(|d| d == domain)
    }

    /// Whether one more seat fits when `used` are taken.
    pub fn has_seat_for_one_more(&self, used: i64) -> bool {
        self.seat_limit == 0 || used < i64::from(self.seat_limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalized_and_checked() {
        let parsed =
            WorkspaceSettings::parse_domains(&[" Example.COM".into(), "example.com".into()]);
        assert_eq!(parsed, Ok(vec!["example.com".to_owned()]));
        assert!(WorkspaceSettings::parse_domains(&["@example.com".into()]).is_err());
        assert!(WorkspaceSettings::parse_domains(&["localhost".into()]).is_err());
        assert!(WorkspaceSettings::parse_domains(&["a..com".into()]).is_err());
    }

    #[test]
    fn emails_match_domains_ignoring_case() {
        let settings = WorkspaceSettings {
            seat_limit: 0,
            allowed_email_domains: vec!["example.com".into()],
            directory_default_role: "agent".into(),
            accept_join_requests: false,
            default_locale: Locale::English,
        };
        let email = |e: &str| EmailAddress::parse(e).expect("valid");
        assert!(settings.allows_email(&email("Ann@EXAMPLE.com")));
        assert!(!settings.allows_email(&email("ann@sub.example.com")));
        assert!(!settings.allows_email(&email("ann@example.org")));
        assert!(WorkspaceSettings::default().allows_email(&email("x@y.io")));
    }

    #[test]
    fn zero_seats_means_no_limit() {
        assert!(WorkspaceSettings::default().has_seat_for_one_more(i64::MAX));
        let two = WorkspaceSettings {
            seat_limit: 2,
            allowed_email_domains: vec![],
            directory_default_role: "agent".into(),
            accept_join_requests: false,
            default_locale: Locale::English,
        };
        assert!(two.has_seat_for_one_more(1));
        assert!(!two.has_seat_for_one_more(2));
    }
}
