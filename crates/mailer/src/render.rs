//! What the emails say and to whom: the mail commands turned into
//! `multipart/alternative` messages (plain text and HTML) from the minijinja
//! templates in `templates/`, embedded in the binary.
//!
//! Templates named `*.html` are auto-escaped, so whatever a user typed (the
//! personal message, names) cannot inject markup; `*.txt` are not. Every
//! check of a command's content happens here, once: a command that cannot
//! make a valid email is a [`RenderError`], a permanent failure.

use lettre::{
    Address, Message,
    message::{Body, Mailbox, MultiPart, SinglePart, header::ContentTransferEncoding},
};
use minijinja::{Environment, UndefinedBehavior, context};
use serde::Serialize;
use time::{OffsetDateTime, format_description::BorrowedFormatItem, macros::format_description};
use url::Url;
use wowchat_users_api::v1::{SendInvitationAcceptedEmail, SendInvitationEmail};

const TEMPLATES: &[(&str, &str)] = &[
    (
        "invitation.subject.txt",
        include_str!("../templates/invitation.subject.txt"),
    ),
    (
        "invitation.txt",
        include_str!("../templates/invitation.txt"),
    ),
    (
        "invitation.html",
        include_str!("../templates/invitation.html"),
    ),
    (
        "invitation_accepted.subject.txt",
        include_str!("../templates/invitation_accepted.subject.txt"),
    ),
    (
        "invitation_accepted.txt",
        include_str!("../templates/invitation_accepted.txt"),
    ),
    (
        "invitation_accepted.html",
        include_str!("../templates/invitation_accepted.html"),
    ),
];

/// e.g. "Friday, 14 March 2025 at 09:30 UTC".
const EXPIRY_FORMAT: &[BorrowedFormatItem<'static>] = format_description!(
    "[weekday], [day padding:none] [month repr:long] [year] at [hour]:[minute] UTC"
);

/// Why a command cannot become an email. Both kinds are permanent: sending
/// the same command again would fail the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// The command lacks something the email needs, or holds a bad address.
    Invalid(&'static str),
    /// A template failed; the text names the template and line, never values.
    Template(String),
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::Invalid(what) => write!(f, "invalid mail command: {what}"),
            RenderError::Template(what) => write!(f, "could not render the email: {what}"),
        }
    }
}

impl std::error::Error for RenderError {}

impl From<minijinja::Error> for RenderError {
    // Only kind, template and line: minijinja's detailed form would print the
    // values in scope, the acceptance link among them.
    fn from(e: minijinja::Error) -> Self {
        RenderError::Template(format!(
            "{} in {} line {}",
            e.kind(),
            e.name().unwrap_or("?"),
            e.line().unwrap_or(0)
        ))
    }
}

/// The three parts of one email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Renderer {
    env: Environment<'static>,
    from: Mailbox,
    accept_url: Url,
}

#[derive(Serialize)]
struct InvitationView<'a> {
    inviter_name: &'a str,
    inviter_email: &'a str,
    workspace_name: &'a str,
    role: &'a str,
    accept_link: &'a str,
    accept_link_html: minijinja::Value,
    message_lines: Vec<String>,
    expires: Option<String>,
}

#[derive(Serialize)]
struct AcceptedView<'a> {
    inviter_name: &'a str,
    user_name: &'a str,
    user_email: &'a str,
    workspace_name: &'a str,
    role: &'a str,
}

impl Renderer {
    pub fn new(from: Mailbox, accept_url: Url) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // A typo in a template fails the tests instead of rendering blanks.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Renderer {
            env,
            from,
            accept_url,
        })
    }

    /// `<accept_url>?token=<token>` (appended to any query the URL has).
    pub fn accept_link(&self, token: &str) -> String {
        let mut url = self.accept_url.clone();
        url.query_pairs_mut().append_pair("token", token);
        url.into()
    }

    /// The invitation's subject and bodies.
    pub fn render_invitation(
        &self,
        command: &SendInvitationEmail,
    ) -> Result<RenderedEmail, RenderError> {
        let invitation = command
            .invitation
            .as_ref()
            .ok_or(RenderError::Invalid("no invitation"))?;
        let token = command.token.trim();
        if token.is_empty() {
            return Err(RenderError::Invalid("no token"));
        }
        let link = self.accept_link(token);
        let inviter_name = one_line(&command.inviter_display_name);
        let inviter_email = one_line(&command.inviter_email);
        let inviter_name = first_non_empty(&[&inviter_name, &inviter_email], "A colleague");
        let workspace_name = one_line(&command.workspace_name);
        let workspace_name = first_non_empty(&[&workspace_name], "a workspace");
        let role = one_line(&invitation.role);
        let expires = invitation.expire_time.as_ref().and_then(|t| {
            OffsetDateTime::from_unix_timestamp(t.seconds)
                .ok()?
                .format(EXPIRY_FORMAT)
                .ok()
        });
        let view = InvitationView {
            inviter_name,
            inviter_email: &inviter_email,
            workspace_name,
            role: &role,
            accept_link: &link,
            accept_link_html: html_safe_link(&link),
            message_lines: message_lines(&invitation.message),
            expires,
        };
        self.render("invitation", &view)
    }

    /// The accepted notice's subject and bodies.
    pub fn render_invitation_accepted(
        &self,
        command: &SendInvitationAcceptedEmail,
    ) -> Result<RenderedEmail, RenderError> {
        let user = command
            .user
            .as_ref()
            .ok_or(RenderError::Invalid("no user"))?;
        let inviter_name = one_line(&command.inviter_display_name);
        let user_name = one_line(&user.display_name);
        let user_email = one_line(&user.email);
        let workspace_name = one_line(&command.workspace_name);
        let role = one_line(&user.role);
        let view = AcceptedView {
            inviter_name: first_non_empty(&[&inviter_name], "there"),
            user_name: first_non_empty(&[&user_name, &user_email], "Someone"),
            user_email: &user_email,
            workspace_name: first_non_empty(&[&workspace_name], "your workspace"),
            role: &role,
        };
        self.render("invitation_accepted", &view)
    }

    /// The invitation email: to the invitee, replies to the inviter.
    pub fn invitation_email(
        &self,
        command: &SendInvitationEmail,
        message_id: &str,
    ) -> Result<Message, RenderError> {
        let invitation = command
            .invitation
            .as_ref()
            .ok_or(RenderError::Invalid("no invitation"))?;
        let to = Mailbox::new(
            None,
            address(&invitation.email, "invalid recipient address")?,
        );
        // A reply reaches the inviter; without a usable address, replies go nowhere special.
        let reply_to = address(&command.inviter_email, "")
            .ok()
            .map(|a| Mailbox::new(non_empty(one_line(&command.inviter_display_name)), a));
        let rendered = self.render_invitation(command)?;
        self.compose(to, reply_to, rendered, message_id)
    }

    /// The accepted notice: to the inviter.
    pub fn invitation_accepted_email(
        &self,
        command: &SendInvitationAcceptedEmail,
        message_id: &str,
    ) -> Result<Message, RenderError> {
        let to = Mailbox::new(
            non_empty(one_line(&command.inviter_display_name)),
            address(&command.inviter_email, "invalid inviter address")?,
        );
        let rendered = self.render_invitation_accepted(command)?;
        self.compose(to, None, rendered, message_id)
    }

    fn render(&self, name: &str, view: &impl Serialize) -> Result<RenderedEmail, RenderError> {
        let subject = self
            .env
            .get_template(&format!("{name}.subject.txt"))?
            .render(view)?;
        let subject = one_line(&subject);
        let text = self
            .env
            .get_template(&format!("{name}.txt"))?
            .render(view)?;
        let html = self
            .env
            .get_template(&format!("{name}.html"))?
            .render(context! { subject => &subject, ..minijinja::Value::from_serialize(view) })?;
        Ok(RenderedEmail {
            subject,
            text,
            html,
        })
    }

    fn compose(
        &self,
        to: Mailbox,
        reply_to: Option<Mailbox>,
        rendered: RenderedEmail,
        message_id: &str,
    ) -> Result<Message, RenderError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject);
        if let Some(reply_to) = reply_to {
            builder = builder.reply_to(reply_to);
        }
        // The command's id (a UUID) makes the Message-ID, so a resend of the
        // same command carries the same one and receiving systems can spot it.
        if let Ok(id) = uuid::Uuid::parse_str(message_id) {
            builder = builder.message_id(Some(format!("<{id}@{}>", self.from.email.domain())));
        }
        let text = plain_body(rendered.text);
        builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::plain(text))
                    .singlepart(SinglePart::html(rendered.html)),
            )
            .map_err(|_| RenderError::Invalid("the email could not be built"))
    }
}

/// Plain ASCII text goes as 7bit (RFC 5322 allows lines up to 998
/// characters), so the accept link stays whole for a person reading the raw
/// message; lettre alone would quote-print any line of 76 or more. Anything
/// else is encoded as lettre picks.
fn plain_body(text: String) -> Body {
    let fits_7bit =
        text.is_ascii() && text.lines().all(|line| line.len() < 998) && !text.contains('\r');
    if fits_7bit {
        Body::dangerous_pre_encoded(
            text.replace('\n', "\r\n").into_bytes(),
            ContentTransferEncoding::SevenBit,
        )
    } else {
        Body::new(text)
    }
}

/// The link, escaped for HTML by hand so it reads as typed in the source
/// (minijinja would also escape every `/`). A serialized URL percent-encodes
/// quotes, `<` and `>`, which leaves `&` as the one character to escape; the
/// text template prints it unchanged either way.
fn html_safe_link(link: &str) -> minijinja::Value {
    minijinja::Value::from_safe_string(link.replace('&', "&amp;"))
}

fn address(raw: &str, invalid: &'static str) -> Result<Address, RenderError> {
    raw.trim()
        .parse::<Address>()
        .map_err(|_| RenderError::Invalid(invalid))
}

/// User text for one line (a subject, a name): control characters, line
/// breaks included, become spaces so nothing can start a new header line.
fn one_line(raw: &str) -> String {
    raw.split(|c: char| c.is_control())
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

fn message_lines(raw: &str) -> Vec<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed
        .lines()
        .map(|line| {
            line.chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .collect()
        })
        .collect()
}

fn first_non_empty<'a>(candidates: &[&'a str], fallback: &'a str) -> &'a str {
    candidates
        .iter()
        .copied()
        .find(|s| !s.is_empty())
        .unwrap_or(fallback)
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use prost_types::Timestamp;
    use wowchat_users_api::v1::{Invitation, User};

    use super::*;

    fn renderer() -> Renderer {
        Renderer::new(
            "WowChat <no-reply@wowchat.localhost>".parse().unwrap(),
            Url::parse("http://localhost:3000/accept-invitation").unwrap(),
        )
        .unwrap()
    }

    fn command(message: &str) -> SendInvitationEmail {
        SendInvitationEmail {
            invitation: Some(Invitation {
                id: "0196a7a0-0000-7000-8000-000000000001".into(),
                workspace_id: "0196a7a0-0000-7000-8000-000000000002".into(),
                email: "ivy.invitee@example.com".into(),
                role: "supervisor".into(),
                message: message.into(),
                // 2025-03-14T09:30:00Z
                expire_time: Some(Timestamp {
                    seconds: 1_741_944_600,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            token: "q1w2e3r4t5y6u7i8o9p0-_AbCdEfGhIjKlMnOpQrStUv".into(),
            workspace_name: "Acme Support".into(),
            inviter_display_name: "Olive Owner".into(),
            inviter_email: "olive@acme.example".into(),
        }
    }

    const LINK: &str = "http://localhost:3000/accept-invitation?token=q1w2e3r4t5y6u7i8o9p0-_AbCdEfGhIjKlMnOpQrStUv";

    #[test]
    fn the_subject_names_the_inviter_and_the_workspace() {
        let email = renderer().render_invitation(&command("")).unwrap();
        assert_eq!(
            email.subject,
            "Olive Owner invited you to Acme Support on WowChat"
        );
    }

    #[test]
    fn both_bodies_carry_the_link_role_message_and_expiry() {
        let email = renderer()
            .render_invitation(&command("Welcome aboard!\nSee you Monday."))
            .unwrap();
        for body in [&email.text, &email.html] {
            assert!(body.contains(LINK), "no link in {body}");
            assert!(body.contains("supervisor"));
            assert!(body.contains("Welcome aboard!"));
            assert!(body.contains("See you Monday."));
            assert!(body.contains("Friday, 14 March 2025 at 09:30 UTC"));
            assert!(body.contains("Olive Owner wrote:"));
        }
        assert!(email.text.contains("> Welcome aboard!\n> See you Monday."));
        assert!(email.html.contains("Welcome aboard!<br>"));
    }

    #[test]
    fn a_script_in_the_message_is_escaped_in_html() {
        let email = renderer()
            .render_invitation(&command("<script>alert('x')</script> & more"))
            .unwrap();
        assert!(!email.html.contains("<script"));
        assert!(email.html.contains("&lt;script&gt;"));
        assert!(email.html.contains("&amp; more"));
        // Plain text shows what was typed.
        assert!(email.text.contains("<script>alert('x')</script> & more"));
    }

    #[test]
    fn names_are_escaped_in_html_too() {
        let mut command = command("");
        command.workspace_name = "<b>Acme</b>".into();
        let email = renderer().render_invitation(&command).unwrap();
        assert!(email.html.contains("&lt;b&gt;Acme&lt;"));
        assert!(!email.html.contains("<b>Acme"));
        assert_eq!(
            email.subject,
            "Olive Owner invited you to <b>Acme</b> on WowChat"
        );
    }

    #[test]
    fn there_is_no_message_section_without_a_message() {
        for message in ["", "   \n  "] {
            let email = renderer().render_invitation(&command(message)).unwrap();
            assert!(!email.text.contains("wrote:"));
            assert!(!email.html.contains("wrote:"));
            assert!(!email.html.contains("personal-message"));
            assert!(email.text.contains(LINK));
        }
    }

    #[test]
    fn line_breaks_in_names_cannot_reach_the_subject() {
        let mut command = command("");
        command.inviter_display_name = "Olive\r\nBcc: everyone@example.com".into();
        let email = renderer().render_invitation(&command).unwrap();
        assert!(!email.subject.contains('\n') && !email.subject.contains('\r'));
        assert!(
            email
                .subject
                .starts_with("Olive Bcc: everyone@example.com invited you")
        );
    }

    #[test]
    fn the_token_is_appended_to_an_accept_url_with_a_query() {
        let renderer = Renderer::new(
            "WowChat <no-reply@wowchat.localhost>".parse().unwrap(),
            Url::parse("https://app.example.com/accept?lang=en").unwrap(),
        )
        .unwrap();
        assert_eq!(
            renderer.accept_link("abc-_123"),
            "https://app.example.com/accept?lang=en&token=abc-_123"
        );
        let mut command = command("");
        command.token = "abc-_123".into();
        let email = renderer.render_invitation(&command).unwrap();
        assert!(
            email
                .text
                .contains("https://app.example.com/accept?lang=en&token=abc-_123")
        );
        assert!(
            email
                .html
                .contains("href=\"https://app.example.com/accept?lang=en&amp;token=abc-_123\"")
        );
    }

    #[test]
    fn a_command_without_a_token_or_a_valid_recipient_is_invalid() {
        let mut no_token = command("");
        no_token.token = String::new();
        assert_eq!(
            renderer().render_invitation(&no_token),
            Err(RenderError::Invalid("no token"))
        );
        let mut bad_address = command("");
        if let Some(invitation) = bad_address.invitation.as_mut() {
            invitation.email = "not an address".into();
        }
        assert_eq!(
            renderer().invitation_email(&bad_address, "x").err(),
            Some(RenderError::Invalid("invalid recipient address"))
        );
    }

    #[test]
    fn the_invitation_email_is_multipart_with_reply_to_the_inviter() {
        let message_id = "0196a7a0-0000-7000-8000-0000000000ff";
        let email = renderer()
            .invitation_email(&command("Hi"), message_id)
            .unwrap();
        let raw = String::from_utf8(email.formatted()).unwrap();
        assert!(raw.contains("To: ivy.invitee@example.com"));
        assert!(raw.contains("Reply-To: \"Olive Owner\" <olive@acme.example>"));
        assert!(raw.contains("From: WowChat <no-reply@wowchat.localhost>"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains(&format!("Message-ID: <{message_id}@wowchat.localhost>")));
    }

    #[test]
    fn the_accepted_notice_tells_the_inviter_who_joined() {
        let command = SendInvitationAcceptedEmail {
            invitation: command("").invitation,
            user: Some(User {
                email: "ivy.invitee@example.com".into(),
                display_name: "Ivy Invitee".into(),
                role: "supervisor".into(),
                ..Default::default()
            }),
            workspace_name: "Acme Support".into(),
            inviter_display_name: "Olive Owner".into(),
            inviter_email: "olive@acme.example".into(),
        };
        let renderer = renderer();
        let email = renderer.render_invitation_accepted(&command).unwrap();
        assert_eq!(
            email.subject,
            "Ivy Invitee accepted your invitation to Acme Support"
        );
        assert!(email.text.contains("Hello Olive Owner,"));
        assert!(email.text.contains("Ivy Invitee (ivy.invitee@example.com)"));
        assert!(email.html.contains("as <strong>supervisor</strong>"));
        let raw = String::from_utf8(
            renderer
                .invitation_accepted_email(&command, "m")
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(raw.contains("To: \"Olive Owner\" <olive@acme.example>"));
    }

    #[test]
    fn ascii_text_goes_as_7bit_and_keeps_long_lines_whole() {
        let link = format!(
            "http://localhost:3000/accept-invitation?token={}",
            "t".repeat(43)
        );
        let body = plain_body(format!("Hello,\n\n{link}\n"));
        assert_eq!(body.encoding(), ContentTransferEncoding::SevenBit);
        let raw = String::from_utf8(body.into_vec()).unwrap();
        assert!(raw.contains(&format!("\r\n{link}\r\n")));

        let accented = plain_body("Bienvenue, Zoë".to_owned());
        assert_ne!(accented.encoding(), ContentTransferEncoding::SevenBit);
    }
}
