//! Verified mail domains: a workspace proves it owns `acme.com` by a DNS TXT
//! record, then lets anyone with an address there join or ask to join, by
//! the domain's enrollment mode.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::EmailAddress;

/// A plain domain name (`example.com`): lowercase ASCII labels of letters,
/// digits and inner hyphens, at least two of them, at most 253 characters.
pub fn parse_domain_name(raw: &str) -> Result<String, String> {
    let domain = raw.trim().trim_end_matches('.').to_lowercase();
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if domain.len() <= 253 && domain.contains('.') && labels_ok {
        Ok(domain)
    } else {
        Err(format!("{raw:?} is not a domain name like example.com"))
    }
}

/// Consumer and disposable mail domains: anyone can have an address there,
/// so owning one proves nothing about a person's employer. Shipped with the
/// service (`free_mail_domains.txt`: the big consumer providers, and the
/// disposable services of the disposable-email-domains and mailchecker
/// lists most seen); a domain under one of them is refused too.
const FREE_MAIL_DOMAINS: &str = include_str!("free_mail_domains.txt");

pub fn is_free_mail(domain: &str) -> bool {
    FREE_MAIL_DOMAINS
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .any(|listed| {
            domain == listed
                || domain
                    .strip_suffix(listed)
                    .is_some_and(|head| head.ends_with('.'))
        })
}

/// The domain part of an address, as it is compared.
pub fn domain_of(email: &EmailAddress) -> &str {
    email
        .normalized()
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .unwrap_or_default()
}

named_enum! {
    #[derive(Serialize, Deserialize)]
    pub enum DomainStatus {
        Pending = "PENDING",
        Verified = "VERIFIED",
        Lapsed = "LAPSED",
        Expired = "EXPIRED",
    }
}

named_enum! {
    /// What an address at a verified domain may do by itself.
    #[derive(Serialize, Deserialize)]
    pub enum EnrollmentMode {
        /// Nothing: people still need an invitation.
        Manual = "MANUAL",
        /// Whoever asks gets an invitation email with the default role.
        Invite = "INVITE",
        /// Whoever asks makes a join request an administrator decides.
        Suggest = "SUGGEST",
    }
}

/// A workspace's claim on a domain, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailDomain {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub domain: String,
    pub status: DomainStatus,
    pub verification_code: String,
    pub enrollment_mode: EnrollmentMode,
    pub default_role: String,
    pub created_by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub verified_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub checked_at: Option<OffsetDateTime>,
}

/// The TXT record that proves a claim: its name and its value.
pub const RECORD_LABEL: &str = "_wowchat-verification";
const VALUE_PREFIX: &str = "wowchat-domain-verification=";

impl MailDomain {
    /// Where the record goes: `_wowchat-verification.<domain>`.
    pub fn record_name(&self) -> String {
        format!("{RECORD_LABEL}.{}", self.domain)
    }

    /// What the record says.
    pub fn record_value(&self) -> String {
        format!("{VALUE_PREFIX}{}", self.verification_code)
    }

    /// Whether one of a lookup's TXT strings is this claim's value.
    pub fn is_proved_by(&self, txt: &[String]) -> bool {
        let expected = self.record_value();
        txt.iter().any(|value| value.trim() == expected)
    }
}

/// A fresh verification code: 128 random bits, base64url.
pub fn verification_code() -> String {
    super::secret::random_base64url(16)
}

/// How long a claim waits for its record.
pub const CLAIM_VALIDITY: Duration = Duration::days(7);

/// A change of a domain's enrollment: `None` keeps a field.
#[derive(Debug, Clone)]
pub struct DomainUpdate {
    pub id: Uuid,
    pub enrollment_mode: Option<EnrollmentMode>,
    pub default_role: Option<String>,
}

/// A stranger asking to join by their address (JoinByEmail).
#[derive(Debug)]
pub struct JoinByEmail {
    pub email: EmailAddress,
    pub display_name: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_are_normalized_and_checked() {
        assert_eq!(parse_domain_name(" Acme.COM. "), Ok("acme.com".into()));
        for bad in ["localhost", "@acme.com", "a..com", "-a.com", "a b.com", ""] {
            assert!(parse_domain_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn consumer_and_disposable_domains_and_their_subdomains_are_free_mail() {
        for free in [
            "gmail.com",
            "outlook.com",
            "mailinator.com",
            "eu.mailinator.com",
        ] {
            assert!(is_free_mail(free), "{free}");
        }
        for owned in ["acme.com", "notgmail.com", "gmail.company.com"] {
            assert!(!is_free_mail(owned), "{owned}");
        }
    }

    #[test]
    fn only_the_exact_value_proves_a_claim() {
        let claim = MailDomain {
            id: Uuid::nil(),
            workspace_id: Uuid::nil(),
            domain: "acme.com".into(),
            status: DomainStatus::Pending,
            verification_code: "abc".into(),
            enrollment_mode: EnrollmentMode::Manual,
            default_role: "agent".into(),
            created_by: Uuid::nil(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: OffsetDateTime::UNIX_EPOCH,
            verified_at: None,
            checked_at: None,
        };
        assert_eq!(claim.record_name(), "_wowchat-verification.acme.com");
        assert!(claim.is_proved_by(&[
            "v=spf1 -all".into(),
            "wowchat-domain-verification=abc".into()
        ]));
        assert!(!claim.is_proved_by(&["wowchat-domain-verification=abcd".into()]));
        assert!(!claim.is_proved_by(&[]));
    }
}
