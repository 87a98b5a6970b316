//! Provisioning by a directory (SCIM): what a directory writes of a member,
//! checked once, and the one rule that turns it into the member's email and
//! display name.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{EmailAddress, Violations, secret::Secret, text, user::Password};

/// The secret of a directory token: `wcdir_` and 32 random bytes
/// (base64url). The prefix tells it from a JWT at a glance, and lets secret
/// scanners find a leaked one.
#[derive(Debug)]
pub struct DirectorySecret(Secret);

impl DirectorySecret {
    const PREFIX: &'static str = "wcdir_";

    pub fn generate() -> Self {
        DirectorySecret(Secret::generate(Self::PREFIX))
    }

    /// A bearer token shaped like a directory secret; whether it works is
    /// for the store to say.
    pub fn parse(bearer: &str) -> Option<Self> {
        Secret::parse(bearer, Self::PREFIX).map(DirectorySecret)
    }

    /// True when `bearer` claims to be a directory secret (not a JWT).
    pub fn claims(bearer: &str) -> bool {
        bearer.starts_with(Self::PREFIX)
    }

    /// The SHA-256 of the secret, the only form the database holds.
    pub fn hash(&self) -> [u8; 32] {
        self.0.sha256()
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// Most characters of a userName or an externalId.
pub const MAX_KEY_CHARS: usize = 256;
/// Most characters of a given or family name.
pub const MAX_NAME_CHARS: usize = 100;
/// Most addresses a member has.
pub const MAX_EMAILS: usize = 10;

/// One address as the directory sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryEmail {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// A person's name as the directory sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonName {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
}

/// What the directory sent of a member besides its keys, kept exactly as
/// sent (stored as `users.directory_profile`) so it reads back unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<PersonName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<DirectoryEmail>,
}

/// What a directory writes of a member, checked.
pub struct DirectoryFields {
    pub user_name: String,
    pub external_id: Option<String>,
    pub profile: DirectoryProfile,
    pub active: bool,
    pub manager_id: Option<Uuid>,
    pub password: Option<Password>,
    /// The member's email, from the profile (see [`member_email`]).
    pub email: EmailAddress,
    /// The member's display name, from the profile (see [`member_display_name`]).
    pub display_name: String,
}

/// What a directory sent, before it is checked.
pub struct UncheckedFields {
    pub user_name: String,
    pub external_id: Option<String>,
    pub profile: DirectoryProfile,
    pub active: bool,
    pub manager_id: Option<Uuid>,
    pub password: Option<String>,
}

impl DirectoryFields {
    /// Checks every field; `prefix` names them in field violations.
    pub fn parse(input: UncheckedFields, v: &mut Violations, prefix: &str) -> Option<Self> {
        let field = |name: &str| format!("{prefix}.{name}");
        let user_name = v.check(&field("user_name"), key(&input.user_name, true));
        let external_id = match &input.external_id {
            Some(id) => v.check(&field("external_id"), key(id, true)).map(Some),
            None => Some(None),
        };
        let mut names_ok = true;
        if let Some(name) = &input.profile.name {
            for (sub, value) in [("given_name", &name.given), ("family_name", &name.family)] {
                if let Some(value) = value
                    && v.check(&field(&format!("name.{sub}")), person_name(value))
                        .is_none()
                {
                    names_ok = false;
                }
            }
        }
        if let Some(display_name) = &input.profile.display_name
            && v.check(&field("display_name"), text::display_name(display_name))
                .is_none()
        {
            names_ok = false;
        }
        if input.profile.emails.len() > MAX_EMAILS {
            v.push(&field("emails"), format!("must be at most {MAX_EMAILS}"));
        }
        let mut emails_ok = true;
        for (i, email) in input.profile.emails.iter().enumerate() {
            if v.check(
                &field(&format!("emails[{i}].value")),
                email_value(&email.value),
            )
            .is_none()
            {
                emails_ok = false;
            }
            if let Some(kind) = &email.kind
                && v.check(&field(&format!("emails[{i}].type")), key(kind, false))
                    .is_none()
            {
                emails_ok = false;
            }
        }
        let email = if emails_ok {
            v.check(
                &field("emails"),
                member_email(&input.user_name, &input.profile),
            )
        } else {
            None
        };
        let password = match &input.password {
            Some(password) => v
                .check(&field("password"), Password::parse(password))
                .map(Some),
            None => Some(None),
        };
        let (user_name, external_id, email, password) =
            (user_name?, external_id?, email?, password?);
        if !names_ok {
            return None;
        }
        let display_name = member_display_name(&user_name, &input.profile);
        Some(DirectoryFields {
            user_name,
            external_id,
            profile: input.profile,
            active: input.active,
            manager_id: input.manager_id,
            password,
            email,
            display_name,
        })
    }
}

/// A directory's required key (a group's name, an externalId): kept exactly
/// as sent, 1 to 256 characters, no control characters.
pub fn directory_key(input: &str) -> Result<String, String> {
    key(input, true)
}

/// A directory's key (userName, externalId, an email's type): kept exactly
/// as sent, 1 to 256 characters, no control characters.
fn key(input: &str, required: bool) -> Result<String, String> {
    if input.is_empty() && required {
        return Err("must not be empty".into());
    }
    if input.chars().count() > MAX_KEY_CHARS {
        return Err(format!("must be at most {MAX_KEY_CHARS} characters"));
    }
    if input.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(input.to_owned())
}

fn person_name(input: &str) -> Result<String, String> {
    if input.chars().count() > MAX_NAME_CHARS {
        return Err(format!("must be at most {MAX_NAME_CHARS} characters"));
    }
    if input.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(input.to_owned())
}

fn email_value(input: &str) -> Result<(), String> {
    EmailAddress::parse(input).map(|_| ())
}

/// The member's email: the primary address, else the "work" one, else the
/// first; with none, the userName when it is an email (Okta's usual setup).
pub fn member_email(user_name: &str, profile: &DirectoryProfile) -> Result<EmailAddress, String> {
    let chosen = profile
        .emails
        .iter()
        .find(|e| e.primary == Some(true))
        .or_else(|| {
            profile.emails.iter().find(|e| {
                e.kind
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case("work"))
            })
        })
        .or(profile.emails.first());
    match chosen {
        Some(email) => EmailAddress::parse(&email.value),
        None => EmailAddress::parse(user_name)
            .map_err(|_| "are needed: the userName is no email address".to_string()),
    }
}

/// The member's display name: the displayName, else "given family", else
/// the userName (cut to 100 characters).
pub fn member_display_name(user_name: &str, profile: &DirectoryProfile) -> String {
    if let Some(display_name) = &profile.display_name {
        return display_name.trim().to_owned();
    }
    let from_name = profile
        .name
        .as_ref()
        .map(|name| {
            [&name.given, &name.family]
                .into_iter()
                .flatten()
                .map(|part| part.trim())
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let chosen = if from_name.is_empty() {
        user_name.trim()
    } else {
        &from_name
    };
    let cut: String = chosen
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    if cut.is_empty() { "Member".into() } else { cut }
}

/// A member's name for a directory when none was ever sent: the display
/// name's first word as the given name, the rest as the family name.
pub fn name_of_display_name(display_name: &str) -> PersonName {
    let mut words = display_name.split_whitespace();
    let given = words.next().map(str::to_owned);
    let rest = words.collect::<Vec<_>>().join(" ");
    PersonName {
        given,
        family: (!rest.is_empty()).then_some(rest),
    }
}

named_enum! {
    /// Where a member stands with the directory.
    #[derive(Serialize, Deserialize)]
    pub enum DirectoryState {
        /// Created or taken over by the directory: it owns the profile and
        /// the activation.
        Linked = "LINKED",
        /// Let go of by a SCIM DELETE: deactivated, no longer the directory's.
        Detached = "DETACHED",
    }
}

/// The fields of a member a directory owns: ManageUser refuses to change
/// them (USER_MANAGED_BY_DIRECTORY) while the directory holds the member.
pub const DIRECTORY_OWNED_FIELDS: [&str; 2] = ["display_name", "status"];

/// An attribute a directory filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterAttribute {
    UserName,
    ExternalId,
    Email,
    DisplayName,
    Active,
}

/// How a directory's condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOperator {
    Equal,
    NotEqual,
    Contains,
    StartsWith,
    EndsWith,
    Present,
}

/// One condition of a directory's listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub attribute: FilterAttribute,
    pub operator: FilterOperator,
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(value: &str, kind: Option<&str>, primary: Option<bool>) -> DirectoryEmail {
        DirectoryEmail {
            value: value.into(),
            kind: kind.map(str::to_owned),
            primary,
        }
    }

    #[test]
    fn the_member_email_is_the_primary_else_work_else_first_else_the_user_name() {
        let mut profile = DirectoryProfile {
            emails: vec![
                email("home@example.com", Some("home"), None),
                email("work@example.com", Some("work"), None),
                email("main@example.com", None, Some(true)),
            ],
            ..Default::default()
        };
        let of =
            |p: &DirectoryProfile| member_email("upn@corp", p).map(|e| e.as_typed().to_owned());
        assert_eq!(of(&profile).as_deref(), Ok("main@example.com"));
        profile.emails.pop();
        assert_eq!(of(&profile).as_deref(), Ok("work@example.com"));
        profile.emails.pop();
        assert_eq!(of(&profile).as_deref(), Ok("home@example.com"));
        profile.emails.clear();
        assert!(of(&profile).is_err(), "a UPN that is no address is refused");
        assert_eq!(
            member_email("ann@example.com", &profile).map(|e| e.as_typed().to_owned()),
            Ok("ann@example.com".into())
        );
    }

    #[test]
    fn the_display_name_comes_from_display_name_else_name_else_user_name() {
        let mut profile = DirectoryProfile {
            name: Some(PersonName {
                given: Some("Ann".into()),
                family: Some("Lee".into()),
            }),
            display_name: Some("Ann L.".into()),
            ..Default::default()
        };
        assert_eq!(member_display_name("ann", &profile), "Ann L.");
        profile.display_name = None;
        assert_eq!(member_display_name("ann", &profile), "Ann Lee");
        profile.name = None;
        assert_eq!(member_display_name("ann@x.test", &profile), "ann@x.test");
        assert_eq!(member_display_name(&"x".repeat(300), &profile).len(), 100);
    }

    #[test]
    fn a_secret_parses_back_and_hashes_alike() {
        let secret = DirectorySecret::generate();
        let parsed = DirectorySecret::parse(secret.expose()).expect("parses");
        assert_eq!(parsed.hash(), secret.hash());
        assert!(DirectorySecret::claims(secret.expose()));
        assert!(DirectorySecret::parse("wcdir_short").is_none());
        assert!(DirectorySecret::parse("eyJhbGciOi.x.y").is_none());
        assert_eq!(format!("{secret:?}"), "DirectorySecret(<redacted>)");
    }

    #[test]
    fn a_display_name_splits_into_a_name() {
        let name = name_of_display_name("Mary Ann de Vries");
        assert_eq!(name.given.as_deref(), Some("Mary"));
        assert_eq!(name.family.as_deref(), Some("Ann de Vries"));
        assert_eq!(name_of_display_name("Cher").family, None);
    }
}
