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
use minijinja::{AutoEscape, Environment, State, UndefinedBehavior, Value, context, value::Kwargs};
use serde::Serialize;
use time::OffsetDateTime;
use url::Url;
use wowchat_i18n::{Args, Catalog, Locale, Part, dates, escape_html};
use wowchat_platform::sealing::{Sealed, TokenKeys};
use wowchat_users_api::events::v1::{
    SealedToken, SendInvitationAcceptedEmail, SendInvitationEmail, SendJoinRequestConfirmationEmail,
};

use crate::headers;

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../templates/layout.html")),
    ("button.html", include_str!("../templates/button.html")),
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
    (
        "join_request_confirmation.subject.txt",
        include_str!("../templates/join_request_confirmation.subject.txt"),
    ),
    (
        "join_request_confirmation.txt",
        include_str!("../templates/join_request_confirmation.txt"),
    ),
    (
        "join_request_confirmation.html",
        include_str!("../templates/join_request_confirmation.html"),
    ),
];

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

/// Where the accept link carries the invitation token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TokenIn {
    /// `<accept url>#token=<token>`: a browser never sends the fragment, so
    /// the token reaches no server log, proxy or `Referer`.
    #[default]
    Fragment,
    /// `<accept url>?token=<token>`, the older form.
    Query,
}

pub struct Renderer {
    env: Environment<'static>,
    from: Mailbox,
    accept_url: Url,
    /// Where the accept link carries the token.
    token_in: TokenIn,
    users_url: Url,
    /// The page that confirms a join request.
    confirm_url: Url,
    /// Open the sealed invitation tokens of mail commands.
    token_keys: Option<TokenKeys>,
    /// The one-click unsubscribe page: `<this>?token=<token>` (RFC 8058).
    unsubscribe_url: Url,
}

/// The language an email is written in, as its templates need it.
#[derive(Serialize)]
struct Language {
    /// The BCP 47 tag: HTML's `lang`, and the catalog `t` reads.
    locale: &'static str,
    /// HTML's `dir`: `rtl` for Arabic.
    dir: &'static str,
    /// The side text starts on, for `text-align` and borders.
    start: &'static str,
}

impl Language {
    fn of(locale: Locale) -> Language {
        Language {
            locale: locale.tag(),
            dir: locale.direction(),
            start: if locale.is_right_to_left() {
                "right"
            } else {
                "left"
            },
        }
    }
}
/// The gateway's unsubscribe page on a developer's machine, until
/// [`Renderer::with_unsubscribe_url`] says otherwise.
const DEFAULT_UNSUBSCRIBE_URL: &str = "http://localhost:8080/unsubscribe";

#[derive(Serialize)]
struct InvitationView<'a> {
    #[serde(flatten)]
    language: Language,
    inviter_name: &'a str,
    inviter_email: &'a str,
    invitee_email: &'a str,
    workspace_name: &'a str,
    role: &'a str,
    /// The catalog's phrase for the role (`role` is the role's name in it);
    /// none for no role.
    role_id: Option<&'static str>,
    accept_link: &'a str,
    accept_link_html: minijinja::Value,
    message_lines: Vec<String>,
    expires: Option<String>,
    /// The one-click unsubscribe link; empty for a command without a token.
    unsubscribe_link: &'a str,
    unsubscribe_link_html: minijinja::Value,
}

#[derive(Serialize)]
struct ConfirmationView<'a> {
    #[serde(flatten)]
    language: Language,
    workspace_name: &'a str,
    requester_name: &'a str,
    requester_email: &'a str,
    confirm_link: &'a str,
    confirm_link_html: minijinja::Value,
    expires: Option<String>,
}

#[derive(Serialize)]
struct AcceptedView<'a> {
    #[serde(flatten)]
    language: Language,
    inviter_name: &'a str,
    user_name: &'a str,
    user_email: &'a str,
    workspace_name: &'a str,
    role: &'a str,
    role_id: Option<&'static str>,
    /// The new member's page, when the command names a user id.
    member_link: Option<String>,
    member_link_html: Option<minijinja::Value>,
    users_link: String,
    users_link_html: minijinja::Value,
}

impl Renderer {
    /// `accept_url`: the page that accepts an invitation; `users_url`: the
    /// workspace's user list, whose `<users_url>/<user id>` is a user's page.
    pub fn new(from: Mailbox, accept_url: Url, users_url: Url) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // A typo in a template fails the tests instead of rendering blanks.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        env.add_function("t", translate);
        env.add_filter("strong", strong);
        // The app's page (on the users list's origin) unless set
        // (`with_confirm_url`): the gateway serves the invitation page, not
        // this one.
        let confirm_url = users_url
            .join("/confirm-join-request")
            .unwrap_or_else(|_| users_url.clone());
        Ok(Renderer {
            env,
            from,
            accept_url,
            token_in: TokenIn::default(),
            users_url,
            confirm_url,
            token_keys: None,
            unsubscribe_url: Url::parse(DEFAULT_UNSUBSCRIBE_URL)
                .map_err(|_| RenderError::Invalid("the default unsubscribe URL"))?,
        })
    }

    /// The one-click unsubscribe page (`WOWCHAT_UNSUBSCRIBE_URL`).
    pub fn with_unsubscribe_url(mut self, url: Url) -> Self {
        self.unsubscribe_url = url;
        self
    }

    /// `<unsubscribe_url>?token=<token>`: the footer link and the
    /// `List-Unsubscribe` header; none for an empty token.
    pub fn unsubscribe_link(&self, token: &str) -> Option<String> {
        let token = token.trim();
        if token.is_empty() {
            return None;
        }
        let mut url = self.unsubscribe_url.clone();
        url.query_pairs_mut().append_pair("token", token);
        Some(url.into())
    }

    /// `<users_url>/<user id>`, for an id that is a UUID.
    pub fn member_link(&self, user_id: &str) -> Option<String> {
        let id = uuid::Uuid::parse_str(user_id.trim()).ok()?;
        let mut url = self.users_url.clone();
        url.path_segments_mut()
            .ok()?
            .pop_if_empty()
            .push(&id.to_string());
        Some(url.into())
    }

    /// The page that confirms a join request, when set apart from the
    /// accept page; the link is `<this>?token=<token>`.
    pub fn with_confirm_url_if_set(mut self, url: Option<Url>) -> Self {
        if let Some(url) = url {
            self.confirm_url = url;
        }
        self
    }

    /// Opens sealed invitation tokens with `keys` (`WOWCHAT_MAIL_TOKEN_KEYS`).
    pub fn with_token_keys(mut self, keys: Option<TokenKeys>) -> Self {
        self.token_keys = keys;
        self
    }

    /// Puts the token of the accept link in the fragment (the default) or
    /// the query (`WOWCHAT_ACCEPT_TOKEN_IN`).
    pub fn with_token_in(mut self, token_in: TokenIn) -> Self {
        self.token_in = token_in;
        self
    }

    /// `<accept_url>#token=<token>` (in place of any fragment the URL has),
    /// or `<accept_url>?token=<token>` (appended to any query it has).
    pub fn accept_link(&self, token: &str) -> String {
        let mut url = self.accept_url.clone();
        match self.token_in {
            TokenIn::Fragment => {
                let fragment = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("token", token)
                    .finish();
                url.set_fragment(Some(&fragment));
            }
            TokenIn::Query => {
                url.query_pairs_mut().append_pair("token", token);
            }
        }
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
        let token = self.token(
            &command.token,
            command.sealed_token.as_ref(),
            &invitation.id,
        )?;
        let link = self.accept_link(&token);
        let locale = Locale::from_tag_or_english(&command.locale);
        let inviter_name = one_line(&command.inviter_display_name);
        let inviter_email = one_line(&command.inviter_email);
        let colleague = word(locale, "fallback-inviter")?;
        let inviter_name = first_non_empty(&[&inviter_name, &inviter_email], &colleague);
        let workspace_name = one_line(&command.workspace_name);
        let a_workspace = word(locale, "fallback-workspace")?;
        let workspace_name = first_non_empty(&[&workspace_name], &a_workspace);
        let (role_id, role) = role_words(locale, &one_line(&invitation.role))?;
        let invitee_email = one_line(&invitation.email);
        let unsubscribe_link = self
            .unsubscribe_link(&command.unsubscribe_token)
            .unwrap_or_default();
        let view = InvitationView {
            language: Language::of(locale),
            inviter_name,
            inviter_email: &inviter_email,
            invitee_email: &invitee_email,
            workspace_name,
            role_id,
            role: &role,
            accept_link: &link,
            accept_link_html: html_safe_link(&link),
            message_lines: message_lines(&invitation.message),
            expires: expiry(locale, invitation.expire_time.as_ref().map(|t| t.seconds)),
            unsubscribe_link_html: html_safe_link(&unsubscribe_link),
            unsubscribe_link: &unsubscribe_link,
        };
        self.render("invitation", &view)
    }

    /// A command's token: opened here and only here when sealed (bound to
    /// `bound_to`, the invitation or request id), so it exists in the clear
    /// only in this process's memory and in the email.
    fn token(
        &self,
        clear: &str,
        sealed: Option<&SealedToken>,
        bound_to: &str,
    ) -> Result<String, RenderError> {
        let token = match sealed {
            Some(sealed) => {
                let keys = self.token_keys.as_ref().ok_or(RenderError::Invalid(
                    "a sealed token, but no WOWCHAT_MAIL_TOKEN_KEYS",
                ))?;
                let sealed = Sealed {
                    key_id: sealed.key_id.clone(),
                    nonce: sealed.nonce.clone(),
                    ciphertext: sealed.ciphertext.clone(),
                };
                keys.open(&sealed, bound_to.as_bytes())
                    .ok_or(RenderError::Invalid("a sealed token that no key opens"))?
                    .trim()
                    .to_owned()
            }
            None => clear.trim().to_owned(),
        };
        if token.is_empty() {
            return Err(RenderError::Invalid("no token"));
        }
        Ok(token)
    }

    /// The join request confirmation's subject and bodies.
    pub fn render_join_request_confirmation(
        &self,
        command: &SendJoinRequestConfirmationEmail,
    ) -> Result<RenderedEmail, RenderError> {
        let request = command
            .join_request
            .as_ref()
            .ok_or(RenderError::Invalid("no join request"))?;
        let token = self.token(&command.token, command.sealed_token.as_ref(), &request.id)?;
        let mut url = self.confirm_url.clone();
        url.query_pairs_mut().append_pair("token", &token);
        let link = String::from(url);
        let workspace_name = one_line(&command.workspace_name);
        let requester_email = one_line(&request.email);
        let requester_name = one_line(&request.display_name);
        let locale = Locale::from_tag_or_english(&command.locale);
        let a_workspace = word(locale, "fallback-workspace")?;
        let view = ConfirmationView {
            language: Language::of(locale),
            workspace_name: first_non_empty(&[&workspace_name], &a_workspace),
            requester_name: first_non_empty(&[&requester_name], &requester_email),
            requester_email: &requester_email,
            confirm_link: &link,
            confirm_link_html: html_safe_link(&link),
            expires: expiry(locale, request.expire_time.as_ref().map(|t| t.seconds)),
        };
        self.render("join_request_confirmation", &view)
    }

    /// The join request confirmation: to the requester.
    pub fn join_request_confirmation_email(
        &self,
        command: &SendJoinRequestConfirmationEmail,
        message_id: &str,
    ) -> Result<Message, RenderError> {
        let request = command
            .join_request
            .as_ref()
            .ok_or(RenderError::Invalid("no join request"))?;
        let to = Mailbox::new(None, address(&request.email, "invalid recipient address")?);
        let rendered = self.render_join_request_confirmation(command)?;
        self.compose(to, None, rendered, message_id)
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
        let member_link = self.member_link(&user.id);
        let users_link = String::from(self.users_url.clone());
        let locale = Locale::from_tag_or_english(&command.locale);
        let there = word(locale, "fallback-greeting-name")?;
        let someone = word(locale, "fallback-someone")?;
        let your_workspace = word(locale, "fallback-your-workspace")?;
        let (role_id, role) = role_words(locale, &one_line(&user.role))?;
        let view = AcceptedView {
            language: Language::of(locale),
            inviter_name: first_non_empty(&[&inviter_name], &there),
            user_name: first_non_empty(&[&user_name, &user_email], &someone),
            user_email: &user_email,
            workspace_name: first_non_empty(&[&workspace_name], &your_workspace),
            role_id,
            role: &role,
            member_link_html: member_link.as_deref().map(html_safe_link),
            member_link,
            users_link_html: html_safe_link(&users_link),
            users_link,
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
        let mut message = self.compose(to, reply_to, rendered, message_id)?;
        // RFC 8058 one-click: the same link as the footer's.
        if let Some(link) = self.unsubscribe_link(&command.unsubscribe_token) {
            let headers = message.headers_mut();
            headers.insert_raw(headers::list_unsubscribe(&link));
            headers.insert_raw(headers::list_unsubscribe_post());
        }
        Ok(message)
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
            .to(to.clone())
            .raw_header(headers::subject(&rendered.subject))
            .raw_header(headers::auto_submitted());
        if let Some(reply_to) = reply_to.clone() {
            builder = builder.reply_to(reply_to);
        }
        // The command's id (a UUID) makes the Message-ID, so a resend of the
        // same command carries the same one and receiving systems can spot it.
        if let Ok(id) = uuid::Uuid::parse_str(message_id) {
            builder = builder.message_id(Some(format!("<{id}@{}>", self.from.email.domain())));
        }
        let text = plain_body(rendered.text);
        let mut message = builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::plain(text))
                    .singlepart(SinglePart::html(rendered.html)),
            )
            .map_err(|_| RenderError::Invalid("the email could not be built"))?;
        // Display names that read as encoded words, encoded so they show as typed.
        let literal = [
            Some(("To", &to)),
            reply_to.as_ref().map(|r| ("Reply-To", r)),
        ];
        for (header, mailbox) in literal.into_iter().flatten() {
            if let Some(value) = headers::mailbox(header, mailbox) {
                message.headers_mut().insert_raw(value);
            }
        }
        Ok(message)
    }
}

/// A message of the mail catalog without placeholders.
fn word(locale: Locale, id: &str) -> Result<String, RenderError> {
    Catalog::mail()
        .format(locale, id, &Args::new())
        .map_err(|e| RenderError::Template(e.to_string()))
}

/// The catalog's phrase for a role (`role_id`) and the role's name in it
/// (`role`): a built-in role's name translated, any other as the workspace
/// named it; neither for no role.
fn role_words(locale: Locale, role: &str) -> Result<(Option<&'static str>, String), RenderError> {
    let built_in = match role {
        "" => return Ok((None, String::new())),
        "owner" => ("role-owner", "role-name-owner"),
        "admin" => ("role-admin", "role-name-admin"),
        "supervisor" => ("role-supervisor", "role-name-supervisor"),
        "agent" => ("role-agent", "role-name-agent"),
        custom => return Ok((Some("role-custom"), custom.to_owned())),
    };
    Ok((Some(built_in.0), word(locale, built_in.1)?))
}

/// When an invitation or a link expires, as the locale writes it.
fn expiry(locale: Locale, seconds: Option<i64>) -> Option<String> {
    let at = OffsetDateTime::from_unix_timestamp(seconds?).ok()?;
    Some(dates::long_date_time(locale, at))
}

/// The templates' `t("id", name=value, …)`: the catalog's message in the
/// email's locale (its `locale` variable). In a text template the result
/// is plain text. In an HTML template the catalog's words are escaped and
/// each value is escaped too, unless it is markup the template made
/// itself (a safe value: `|strong`, a `set` block): a translator's file
/// can never inject markup, nor can a name.
fn translate(state: &State, id: &str, kwargs: Kwargs) -> Result<Value, minijinja::Error> {
    let locale = state
        .lookup("locale")
        .and_then(|tag| tag.as_str().and_then(Locale::from_tag))
        .unwrap_or_default();
    let names: Vec<&str> = kwargs.args().collect();
    let mut values = Vec::with_capacity(names.len());
    for name in &names {
        values.push((*name, kwargs.get::<Value>(name)?));
    }
    kwargs.assert_all_used()?;
    let args = values.iter().fold(Args::new(), |args, (name, value)| {
        match i64::try_from(value.clone()) {
            Ok(number) if value.is_number() => args.number(name, number),
            _ => args.text(name, value.to_string()),
        }
    });
    let failed = |e: wowchat_i18n::FormatError| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
    };
    if matches!(state.auto_escape(), AutoEscape::None) {
        return Catalog::mail()
            .format(locale, id, &args)
            .map(Value::from)
            .map_err(failed);
    }
    let mut html = String::new();
    for part in Catalog::mail()
        .format_parts(locale, id, &args)
        .map_err(failed)?
    {
        match part {
            Part::Words(words) => html.push_str(&escape_html(&words)),
            Part::Value(name) => {
                let value = values.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
                match value {
                    Some(value) if value.is_safe() => html.push_str(&value.to_string()),
                    Some(value) => html.push_str(&escape_html(&value.to_string())),
                    None => {}
                }
            }
        }
    }
    Ok(Value::from_safe_string(html))
}

/// `{{ name|strong }}`: the value in bold, escaped.
fn strong(value: &Value) -> Value {
    Value::from_safe_string(format!(
        "<strong>{}</strong>",
        escape_html(&value.to_string())
    ))
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
            Url::parse("http://localhost:3000/users").unwrap(),
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
            sealed_token: None,
            ..Default::default()
        }
    }

    #[test]
    fn a_sealed_token_is_opened_for_the_link_and_refused_without_the_key() {
        let setting = TokenKeys::generate_setting().unwrap();
        let keys = TokenKeys::parse(&setting).unwrap();
        let mut sealed = command("");
        let token = std::mem::take(&mut sealed.token);
        let invitation_id = sealed.invitation.as_ref().unwrap().id.clone();
        let seal = keys.seal(&token, invitation_id.as_bytes()).unwrap();
        sealed.sealed_token = Some(wowchat_users_api::events::v1::SealedToken {
            key_id: seal.key_id,
            nonce: seal.nonce,
            ciphertext: seal.ciphertext,
        });
        let opening = renderer().with_token_keys(Some(TokenKeys::parse(&setting).unwrap()));
        let email = opening.render_invitation(&sealed).unwrap();
        assert!(email.text.contains(&token), "{}", email.text);
        assert!(matches!(
            renderer().render_invitation(&sealed),
            Err(RenderError::Invalid(_))
        ));
        // Moved to another invitation's command, it does not open.
        sealed.invitation.as_mut().unwrap().id = "0196a7a0-0000-7000-8000-000000000009".into();
        assert!(matches!(
            opening.render_invitation(&sealed),
            Err(RenderError::Invalid(_))
        ));
    }

    const LINK: &str = "http://localhost:3000/accept-invitation#token=q1w2e3r4t5y6u7i8o9p0-_AbCdEfGhIjKlMnOpQrStUv";

    fn confirmation(display_name: &str) -> SendJoinRequestConfirmationEmail {
        SendJoinRequestConfirmationEmail {
            join_request: Some(wowchat_users_api::v1::JoinRequest {
                id: "0196a7a0-0000-7000-8000-000000000003".into(),
                email: "eve@example.com".into(),
                display_name: display_name.into(),
                expire_time: Some(Timestamp {
                    seconds: 1_741_944_600,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            workspace_name: "Acme Support".into(),
            token: String::new(),
            sealed_token: None,
            ..Default::default()
        }
    }

    #[test]
    fn a_join_request_confirmation_links_beside_the_accept_page_with_its_sealed_token() {
        let setting = TokenKeys::generate_setting().unwrap();
        let keys = TokenKeys::parse(&setting).unwrap();
        let mut command = confirmation("Eve <b>Evening</b>");
        let token = "z9y8x7w6v5u4t3s2r1q0-_ZyXwVuTsRqPoNmLkJiHgFe";
        let seal = keys
            .seal(token, b"0196a7a0-0000-7000-8000-000000000003")
            .unwrap();
        command.sealed_token = Some(wowchat_users_api::events::v1::SealedToken {
            key_id: seal.key_id,
            nonce: seal.nonce,
            ciphertext: seal.ciphertext,
        });
        let opening = renderer().with_token_keys(Some(keys));
        let email = opening.render_join_request_confirmation(&command).unwrap();
        assert_eq!(
            email.subject,
            "Confirm your request to join Acme Support on WowChat"
        );
        let link = format!("http://localhost:3000/confirm-join-request?token={token}");
        for body in [&email.text, &email.html] {
            assert!(body.contains(&link), "no link in {body}");
            assert!(
                body.contains("Friday, March 14, 2025 at 9:30\u{202f}AM (UTC)"),
                "{body}"
            );
        }
        // The name is the requester's typing: escaped in HTML.
        assert!(email.html.contains("Eve &lt;b&gt;Evening"));
        assert!(!email.html.contains("<b>Evening"));
        // Without the key, or moved to another request, it does not open.
        assert!(
            renderer()
                .render_join_request_confirmation(&command)
                .is_err()
        );
        command.join_request.as_mut().unwrap().id = "0196a7a0-0000-7000-8000-000000000009".into();
        assert!(opening.render_join_request_confirmation(&command).is_err());
        // A page of its own when configured.
        let own = renderer()
            .with_confirm_url_if_set(Some(Url::parse("https://app.example.com/join").unwrap()));
        let mut clear = confirmation("");
        clear.token = token.into();
        let email = own.render_join_request_confirmation(&clear).unwrap();
        assert!(
            email
                .text
                .contains(&format!("https://app.example.com/join?token={token}"))
        );
        assert!(email.text.contains("on WowChat as eve@example.com."));
    }

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
            assert!(
                body.contains("Friday, March 14, 2025 at 9:30\u{202f}AM (UTC)"),
                "{body}"
            );
            assert!(body.contains("Olive Owner added a message:"));
            assert!(body.contains("This message was written by Olive Owner, not by WowChat."));
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
            assert!(!email.text.contains("added a message"));
            assert!(!email.html.contains("added a message"));
            assert!(!email.text.contains("not by WowChat"));
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
    fn the_token_goes_in_the_fragment_by_default_and_replaces_any_fragment() {
        let renderer = Renderer::new(
            "WowChat <no-reply@wowchat.localhost>".parse().unwrap(),
            Url::parse("https://app.example.com/invite?lang=en#old").unwrap(),
            Url::parse("https://app.example.com/users").unwrap(),
        )
        .unwrap();
        let link = "https://app.example.com/invite?lang=en#token=abc-_123";
        assert_eq!(renderer.accept_link("abc-_123"), link);
        let mut command = command("");
        command.token = "abc-_123".into();
        let email = renderer.render_invitation(&command).unwrap();
        assert!(email.text.contains(link), "{}", email.text);
        assert!(
            email
                .html
                .contains("href=\"https://app.example.com/invite?lang=en#token=abc-_123\""),
            "{}",
            email.html
        );
    }

    #[test]
    fn the_token_is_appended_to_an_accept_url_with_a_query_in_the_query_form() {
        let renderer = Renderer::new(
            "WowChat <no-reply@wowchat.localhost>".parse().unwrap(),
            Url::parse("https://app.example.com/accept?lang=en").unwrap(),
            Url::parse("https://app.example.com/users").unwrap(),
        )
        .unwrap()
        .with_token_in(TokenIn::Query);
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
                id: "0196a7a0-0000-7000-8000-0000000000aa".into(),
                email: "ivy.invitee@example.com".into(),
                display_name: "Ivy Invitee".into(),
                role: "supervisor".into(),
                ..Default::default()
            }),
            workspace_name: "Acme Support".into(),
            inviter_display_name: "Olive Owner".into(),
            inviter_email: "olive@acme.example".into(),
            ..Default::default()
        };
        let renderer = renderer();
        let email = renderer.render_invitation_accepted(&command).unwrap();
        assert_eq!(
            email.subject,
            "Ivy Invitee accepted your invitation to Acme Support"
        );
        assert!(email.text.contains("Hello Olive Owner,"));
        assert!(email.text.contains("Ivy Invitee (ivy.invitee@example.com)"));
        assert!(email.html.contains("as a <strong>supervisor</strong>"));
        assert!(email.text.contains("as a supervisor."));
        let member = "http://localhost:3000/users/0196a7a0-0000-7000-8000-0000000000aa";
        assert!(email.text.contains(member), "{}", email.text);
        assert!(email.html.contains(&format!("href=\"{member}\"")));
        assert!(
            email
                .text
                .contains("Everyone in Acme Support: http://localhost:3000/users\n")
        );
        assert!(email.html.contains("<h1"));
        assert!(
            email
                .html
                .contains("You received this email because you invited")
        );
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

    fn accepted(display_name: &str, role: &str) -> SendInvitationAcceptedEmail {
        SendInvitationAcceptedEmail {
            invitation: command("").invitation,
            user: Some(User {
                id: "0196a7a0-0000-7000-8000-0000000000aa".into(),
                email: "ivy.invitee@example.com".into(),
                display_name: display_name.into(),
                role: role.into(),
                ..Default::default()
            }),
            workspace_name: "Acme Support".into(),
            inviter_display_name: "Olive Owner".into(),
            inviter_email: "olive@acme.example".into(),
            ..Default::default()
        }
    }

    #[test]
    fn every_locale_writes_all_three_emails_in_its_own_words_and_direction() {
        let renderer = renderer();
        let english = renderer.render_invitation(&command("Hallo")).unwrap();
        for locale in Locale::ALL {
            let mut invitation = command("Hallo");
            invitation.locale = locale.tag().into();
            let email = renderer.render_invitation(&invitation).unwrap();
            let html_tag = format!(
                "<html lang=\"{}\" dir=\"{}\">",
                locale.tag(),
                locale.direction()
            );
            assert!(
                email.html.contains(&html_tag),
                "{locale}: {}",
                &email.html[..200]
            );
            // Names, the link and the personal message stay as typed.
            for body in [&email.text, &email.html] {
                assert!(body.contains(LINK), "{locale}: no link");
                assert!(
                    body.contains("Olive Owner") && body.contains("Acme Support"),
                    "{locale}"
                );
                assert!(body.contains("Hallo"), "{locale}: the message");
            }
            assert_same_content(&email);
            let mut notice = accepted("Ivy", "admin");
            notice.locale = locale.tag().into();
            let notice = renderer.render_invitation_accepted(&notice).unwrap();
            let mut request = confirmation("Eve");
            request.locale = locale.tag().into();
            request.token = "tok".into();
            let confirmation = renderer.render_join_request_confirmation(&request).unwrap();
            for rendered in [&notice, &confirmation] {
                assert!(rendered.html.contains(&html_tag), "{locale}");
            }
            if locale != Locale::English {
                assert_ne!(email.subject, english.subject, "{locale}: not translated");
                assert_ne!(email.text, english.text, "{locale}: not translated");
            }
        }
        let mut german = command("");
        german.locale = "de".into();
        let german = renderer.render_invitation(&german).unwrap();
        assert!(german.text.contains("März 2025"), "{}", german.text);
        assert!(
            german.html.contains("<strong>Supervisor</strong>"),
            "{}",
            german.html
        );
        // An unknown or empty locale is English.
        let mut unknown = command("Hallo");
        unknown.locale = "tlh".into();
        assert_eq!(renderer.render_invitation(&unknown).unwrap(), english);
    }

    #[test]
    fn a_translation_cannot_inject_markup_and_names_stay_escaped_in_every_locale() {
        for locale in Locale::ALL {
            let mut invitation = command("<b>hi</b>");
            invitation.locale = locale.tag().into();
            invitation.workspace_name = "<i>Acme</i> & Co".into();
            let email = renderer().render_invitation(&invitation).unwrap();
            assert!(!email.html.contains("<i>Acme"), "{locale}");
            assert!(
                email.html.contains("&lt;i&gt;Acme&lt;/i&gt; &amp; Co"),
                "{locale}"
            );
            assert!(!email.html.contains("<b>hi"), "{locale}");
        }
    }

    fn parsed(message: &Message) -> mail_parser::Message<'static> {
        let raw = message.formatted();
        mail_parser::MessageParser::default()
            .parse(&raw)
            .unwrap()
            .into_owned()
    }

    /// The words a reader sees in `html`: tags dropped, entities undone,
    /// white space collapsed.
    fn visible_text(html: &str) -> String {
        let body = html.split_once("<body").map_or(html, |(_, b)| b);
        let mut text = String::new();
        let mut in_tag = false;
        for c in body.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                _ if !in_tag => text.push(c),
                _ => {}
            }
        }
        let text = text
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&#x2f;", "/")
            .replace("&amp;", "&");
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Every sentence of the plain text is in the HTML too (labels ending
    /// in `:` aside; links may be a button's target).
    fn assert_same_content(email: &RenderedEmail) {
        let seen = visible_text(&email.html);
        for line in email.text.lines() {
            let line = line.trim_start_matches('>').trim();
            // A line that leads in to a link stands only in the text part
            // (Japanese ends it with a full-width colon).
            if line.is_empty() || line == "--" || line.ends_with([':', '：']) {
                continue;
            }
            if line.starts_with("http") {
                assert!(
                    email.html.contains(&line.replace('&', "&amp;")),
                    "the HTML lacks the link {line}"
                );
                continue;
            }
            let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(seen.contains(&line), "the HTML lacks {line:?}\nin {seen}");
        }
    }

    #[test]
    fn the_text_and_html_parts_say_the_same_thing() {
        let renderer = renderer();
        let invitation = renderer
            .render_invitation(&command("Welcome aboard!\n\nSee you <Monday> & \"soon\"."))
            .unwrap();
        assert_same_content(&invitation);
        assert_same_content(&renderer.render_invitation(&command("")).unwrap());
        assert_same_content(
            &renderer
                .render_invitation_accepted(&accepted("Ivy <Invitee>", "agent"))
                .unwrap(),
        );
    }

    #[test]
    fn built_in_roles_take_an_article_and_a_custom_role_is_named_as_such() {
        for (role, text, html) in [
            ("owner", "as an owner.", "as an <strong>owner</strong>."),
            ("admin", "as an admin.", "as an <strong>admin</strong>."),
            (
                "supervisor",
                "as a supervisor.",
                "as a <strong>supervisor</strong>.",
            ),
            ("agent", "as an agent.", "as an <strong>agent</strong>."),
            (
                "permission-checker",
                "with the role “permission-checker”.",
                "with the role “<strong>permission-checker</strong>”.",
            ),
        ] {
            let mut command = command("");
            if let Some(invitation) = command.invitation.as_mut() {
                invitation.role = role.into();
            }
            let email = renderer().render_invitation(&command).unwrap();
            assert!(email.text.contains(text), "{role}: {}", email.text);
            assert!(email.html.contains(html), "{role}");
            let notice = renderer()
                .render_invitation_accepted(&accepted("Ivy", role))
                .unwrap();
            assert!(notice.text.contains(text), "{role}: {}", notice.text);
            assert!(notice.html.contains(html), "{role}");
        }
    }

    #[test]
    fn the_html_invitation_has_the_brand_a_footer_and_a_button_outlook_draws() {
        let email = renderer().render_invitation(&command("Hi")).unwrap();
        let html = &email.html;
        assert!(html.contains(">WowChat</td>"), "a brand line");
        assert!(html.contains(
            "You received this email because Olive Owner invited ivy.invitee@example.com"
        ));
        // The button is a table cell with its own colour and, for Outlook's
        // Word engine which ignores a link's padding, mso-padding-alt.
        let button = html.find("class=\"button\"").unwrap();
        let cell = html[..button].rfind("<td").unwrap();
        let cell = &html[cell..button];
        assert!(cell.contains("bgcolor=\"#2563eb\""), "{cell}");
        assert!(cell.contains("mso-padding-alt:12px 24px"), "{cell}");
        assert!(html[..button].contains("<table role=\"presentation\""));
        assert!(!html.contains("<p style=\"margin:24px 0;\"><a"));
    }

    #[test]
    fn long_words_may_break_anywhere_in_the_message_and_the_card() {
        let email = renderer()
            .render_invitation(&command(&"x".repeat(200)))
            .unwrap();
        for class in ["card", "personal-message"] {
            let at = email.html.find(&format!("class=\"{class}\"")).unwrap();
            let tag = &email.html[at..at + email.html[at..].find('>').unwrap()];
            assert!(tag.contains("overflow-wrap:anywhere"), "{class}: {tag}");
            assert!(tag.contains("word-break:break-word"), "{class}: {tag}");
        }
    }

    #[test]
    fn a_name_like_an_encoded_word_is_displayed_as_typed_in_subject_and_reply_to() {
        let mut command = command("");
        command.inviter_display_name = "=?utf-8?b?QQ==?=".into();
        command.workspace_name = "=?utf-8?q?Evil=0D=0ABcc:_x?= Team".into();
        let message = parsed(&renderer().invitation_email(&command, "m").unwrap());
        assert_eq!(
            message.subject(),
            Some("=?utf-8?b?QQ==?= invited you to =?utf-8?q?Evil=0D=0ABcc:_x?= Team on WowChat")
        );
        let reply_to = message.reply_to().and_then(|a| a.first()).unwrap();
        assert_eq!(reply_to.name(), Some("=?utf-8?b?QQ==?="));
        assert_eq!(reply_to.address(), Some("olive@acme.example"));

        let mut notice = accepted("=?utf-8?b?SGk=?=", "agent");
        notice.inviter_display_name = "=?utf-8?b?QQ==?=".into();
        let message = parsed(&renderer().invitation_accepted_email(&notice, "m").unwrap());
        assert_eq!(
            message.subject(),
            Some("=?utf-8?b?SGk=?= accepted your invitation to Acme Support")
        );
        let to = message.to().and_then(|a| a.first()).unwrap();
        assert_eq!(to.name(), Some("=?utf-8?b?QQ==?="));
        assert_eq!(to.address(), Some("olive@acme.example"));
    }

    #[test]
    fn markup_quotes_and_ampersands_in_names_reach_the_headers_as_typed() {
        let mut command = command("");
        command.inviter_display_name = "Olive \"The Boss\" <b>Owner</b> & Co".into();
        command.workspace_name = "<i>Acme</i> & 'Partners'".into();
        let message = parsed(&renderer().invitation_email(&command, "m").unwrap());
        assert_eq!(
            message.subject(),
            Some(
                "Olive \"The Boss\" <b>Owner</b> & Co invited you to <i>Acme</i> & 'Partners' on WowChat"
            )
        );
        let reply_to = message.reply_to().and_then(|a| a.first()).unwrap();
        assert_eq!(
            reply_to.name(),
            Some("Olive \"The Boss\" <b>Owner</b> & Co")
        );
        let html = message.body_html(0).unwrap();
        assert!(!html.contains("<b>Owner"));
        assert!(
            html.contains("&lt;b&gt;Owner&lt;&#x2f;b&gt; &amp; Co"),
            "{html}"
        );
    }

    #[test]
    fn an_invitation_carries_one_click_unsubscribe_headers_and_the_same_link_in_both_parts() {
        let renderer = renderer()
            .with_unsubscribe_url(Url::parse("https://users.example.com/unsubscribe").unwrap());
        let mut with_token = command("");
        with_token.unsubscribe_token = "AQID-_x".into();
        let email = renderer
            .invitation_email(&with_token, "0196a7a0-0000-7000-8000-0000000000aa")
            .unwrap();
        let raw = String::from_utf8(email.formatted()).unwrap();
        let link = "https://users.example.com/unsubscribe?token=AQID-_x";
        assert!(
            raw.contains(&format!("List-Unsubscribe: <{link}>\r\n")),
            "{raw}"
        );
        assert!(
            raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
            "{raw}"
        );
        let rendered = renderer.render_invitation(&with_token).unwrap();
        assert!(rendered.text.contains(link), "{}", rendered.text);
        assert!(
            rendered.html.contains(&format!("href=\"{link}\"")),
            "{}",
            rendered.html
        );
        assert_same_content(&rendered);

        // A command of a service that signs no token: no link, no headers.
        let without = renderer.render_invitation(&command("")).unwrap();
        assert!(!without.text.contains("unsubscribe?"), "{}", without.text);
        let email = renderer
            .invitation_email(&command(""), "0196a7a0-0000-7000-8000-0000000000ab")
            .unwrap();
        let raw = String::from_utf8(email.formatted()).unwrap();
        assert!(!raw.contains("List-Unsubscribe"), "{raw}");
    }

    #[test]
    fn every_email_asks_not_to_be_answered_automatically() {
        let renderer = renderer();
        for email in [
            renderer.invitation_email(&command(""), "m").unwrap(),
            renderer
                .invitation_accepted_email(&accepted("Ivy", "agent"), "m")
                .unwrap(),
        ] {
            let message = parsed(&email);
            assert_eq!(
                message.header_raw("Auto-Submitted").map(str::trim),
                Some("auto-generated")
            );
        }
    }

    #[test]
    fn a_user_without_a_uuid_gets_no_member_link_but_the_users_list() {
        let mut notice = accepted("Ivy", "agent");
        if let Some(user) = notice.user.as_mut() {
            user.id = "not-a-uuid".into();
        }
        let email = renderer().render_invitation_accepted(&notice).unwrap();
        assert!(!email.html.contains("class=\"button\""));
        assert!(!email.text.contains("See the new member"));
        assert!(email.text.contains("http://localhost:3000/users"));
        assert_same_content(&email);
    }
}
