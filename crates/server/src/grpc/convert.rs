//! Conversions between the wire and the domain. Requests are parsed here,
//! once, into domain values (every field destructured, so a new proto field
//! breaks the build until it is handled); domain records become messages.

use std::net::IpAddr;

use prost::Message;
use prost_types::Timestamp;
use time::OffsetDateTime;
use uuid::Uuid;
use wowchat_users_api::v1 as proto;

use crate::{
    domain::{
        EmailAddress, Error,
        activity::{Action, ActivityFilter},
        error::Violations,
        idempotency::IdempotencyKey,
        invitation::{
            Invitation, InvitationStatus, InvitationToken, InvitationUpdate, NewInvitation,
            Validity,
        },
        locale, pagination,
        permission::parse_role_name,
        text,
        user::{AcceptInvitation, ManageUser, Password, UserAction, UserStatus},
        workspace::{SettingsUpdate, WorkspaceSettings},
    },
    operations::{Page, PageRequest, invitations::InvitationPreview, sign_in::SignIn},
    store::{
        invitations::InvitationFilter,
        user_listing::{UserFilter, UserOrder},
    },
    wire,
};

// ---- domain to wire (the records themselves are in `crate::wire`) ----

pub fn invitation_preview(preview: &InvitationPreview) -> proto::PreviewInvitationResponse {
    proto::PreviewInvitationResponse {
        workspace_name: preview.workspace_name.clone(),
        inviter_display_name: preview.inviter_display_name.clone(),
        role: preview.invitation.role.clone(),
        expire_time: Some(wire::timestamp(preview.invitation.expires_at)),
        email: preview.invitation.email.clone(),
        locale: preview.invitation.locale.tag().to_owned(),
    }
}

/// One row's outcome in a BatchInviteUsers response.
pub fn batch_invite_result(outcome: Result<Invitation, Error>) -> proto::BatchInviteResult {
    use proto::batch_invite_result::Outcome;
    proto::BatchInviteResult {
        outcome: Some(match outcome {
            Ok(created) => Outcome::Invitation(wire::invitation(&created)),
            Err(refused) => Outcome::Refusal(crate::grpc::status::refusal(refused)),
        }),
    }
}

/// A page of a List response as its message holds it: the items as
/// messages, the token of the next page and the total size.
pub(super) fn listed<T, M>(page: Page<T>, to_wire: impl FnMut(&T) -> M) -> (Vec<M>, String, i32) {
    let Page {
        items,
        next_page_token,
        total_size,
    } = page;
    (
        items.iter().map(to_wire).collect(),
        next_page_token,
        count(total_size),
    )
}

/// A count as an `int32` field holds it: past `i32::MAX`, `i32::MAX`.
pub(super) fn count(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

// ---- wire to domain ----

/// A required UUID field.
pub(super) fn uuid(input: &str) -> Result<Uuid, String> {
    if input.is_empty() {
        return Err("must not be empty".into());
    }
    Uuid::parse_str(input).map_err(|_| "must be a UUID".into())
}

/// An optional UUID field: empty means unset.
pub(super) fn optional_uuid(input: &str) -> Result<Option<Uuid>, String> {
    if input.is_empty() {
        Ok(None)
    } else {
        uuid(input).map(Some)
    }
}

/// An `etag` field alone, as a handler parses it.
pub fn etag_field(etag: &str) -> Result<Option<i64>, Error> {
    expected_version(etag).map_err(|why| Error::invalid("etag", why))
}

/// Parses a lone id field of a Get/Resend/Revoke request.
pub fn id_field(field: &str, input: &str) -> Result<Uuid, Error> {
    uuid(input).map_err(|description| Error::invalid(field, description))
}

/// A proto enum field whose `UNSPECIFIED` means none: `to_domain` maps the
/// values the proto knows (`None` for unspecified); a number it does not
/// know is refused with `not_known`.
pub(super) fn optional_enum<P: TryFrom<i32>, D>(
    value: i32,
    not_known: &str,
    to_domain: impl FnOnce(P) -> Option<D>,
) -> Result<Option<D>, String> {
    P::try_from(value)
        .map(to_domain)
        .map_err(|_| not_known.to_string())
}

pub(super) fn duration(
    input: Option<prost_types::Duration>,
) -> Result<Option<time::Duration>, String> {
    input
        .map(|d| {
            if d.seconds < 0 || d.nanos < 0 {
                return Err("must not be negative".to_string());
            }
            // google.protobuf.Duration keeps nanos below one second; more
            // would overflow the seconds.
            if d.nanos >= 1_000_000_000 {
                return Err("nanos must be below 1,000,000,000".to_string());
            }
            Ok(time::Duration::new(d.seconds, d.nanos))
        })
        .transpose()
}

/// A time filter: a time Postgres stores ([`pagination::storable_time`]).
fn optional_time(input: Option<Timestamp>) -> Result<Option<OffsetDateTime>, String> {
    input
        .map(|t| {
            // google.protobuf.Timestamp keeps nanos within one second.
            if !(0..1_000_000_000).contains(&t.nanos) {
                return Err("nanos must be between 0 and 999,999,999".to_string());
            }
            pagination::storable_time(i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos))
        })
        .transpose()
}

/// The version an `etag` field names; empty: no check.
pub(super) fn expected_version(etag: &str) -> Result<Option<i64>, String> {
    if etag.is_empty() {
        return Ok(None);
    }
    crate::domain::version_of_etag(etag)
        .map(Some)
        .ok_or_else(|| "is not an etag of this service".to_string())
}

/// An access expiry: a storable time in the future, or none.
fn access_expiry(input: Option<Timestamp>) -> Result<Option<OffsetDateTime>, String> {
    let at = optional_time(input)?;
    match at {
        Some(at) if at <= OffsetDateTime::now_utc() => Err("must be in the future".to_string()),
        _ => Ok(at),
    }
}

/// The bytes a request id fingerprints: the request without its request id.
pub(super) fn fingerprint_of<M: Message + Clone>(
    request: &M,
    clear: impl FnOnce(&mut M),
) -> Vec<u8> {
    let mut copy = request.clone();
    clear(&mut copy);
    copy.encode_to_vec()
}

impl TryFrom<proto::InviteUserRequest> for NewInvitation {
    type Error = Error;

    fn try_from(request: proto::InviteUserRequest) -> Result<Self, Error> {
        let fingerprint = fingerprint_of(&request, |r| r.request_id.clear());
        let proto::InviteUserRequest {
            email,
            role,
            reporting_to_user_id,
            message,
            expires_in,
            request_id,
            access_expire_time,
            locale,
        } = request;
        let mut v = Violations::default();
        let email = v.check("email", EmailAddress::parse(&email));
        let role = v.check("role", parse_role_name(&role));
        let reporting_to = v.check(
            "reporting_to_user_id",
            reporting_to_user_id.as_deref().map(uuid).transpose(),
        );
        let message = v.check("message", text::personal_message(&message));
        let valid_for = v.check("expires_in", duration(expires_in).and_then(Validity::parse));
        let access_expires_at = v.check("access_expire_time", access_expiry(access_expire_time));
        let locale = v.check("locale", locale::parse_optional(&locale));
        let idempotency = v.check(
            "request_id",
            IdempotencyKey::parse(&request_id, &fingerprint),
        );
        v.finish()?;
        // No violation: every field is parsed.
        let parsed = || {
            Some(NewInvitation {
                email: email?,
                role: role?,
                reporting_to: reporting_to?,
                message: message?,
                valid_for: valid_for?,
                access_expires_at: access_expires_at?,
                idempotency: idempotency?,
                locale: locale?,
            })
        };
        parsed().ok_or_else(unrecorded)
    }
}

/// The most rows of one BatchInviteUsers call.
pub const MAX_BATCH_INVITES: usize = 100;

/// Each row parsed on its own: a row's invalid input refuses that row only.
pub fn batch_invite(
    request: proto::BatchInviteUsersRequest,
) -> Result<Vec<Result<NewInvitation, Error>>, Error> {
    let proto::BatchInviteUsersRequest { requests } = request;
    if requests.is_empty() || requests.len() > MAX_BATCH_INVITES {
        return Err(Error::invalid(
            "requests",
            format!("must hold 1 to {MAX_BATCH_INVITES} invitations"),
        ));
    }
    Ok(requests.into_iter().map(NewInvitation::try_from).collect())
}

impl TryFrom<proto::UpdateInvitationRequest> for InvitationUpdate {
    type Error = Error;

    fn try_from(request: proto::UpdateInvitationRequest) -> Result<Self, Error> {
        let proto::UpdateInvitationRequest {
            invitation_id,
            role,
            reporting_to_user_id,
            expires_in,
            etag,
            locale,
        } = request;
        let mut v = Violations::default();
        let id = v.check("invitation_id", uuid(&invitation_id));
        let expected_version = v.check("etag", expected_version(&etag));
        if role.is_none()
            && reporting_to_user_id.is_none()
            && expires_in.is_none()
            && locale.is_none()
        {
            v.push(
                "role",
                "at least one of role, reporting_to_user_id, expires_in and locale must be set",
            );
        }
        let role = v.check("role", role.as_deref().map(parse_role_name).transpose());
        let reporting_to = v.check(
            "reporting_to_user_id",
            reporting_to_user_id
                .as_deref()
                .map(optional_uuid)
                .transpose(),
        );
        let valid_for = v.check(
            "expires_in",
            duration(expires_in).and_then(|d| d.map(|d| Validity::parse(Some(d))).transpose()),
        );
        let locale = v.check("locale", locale.as_deref().map(locale::parse).transpose());
        v.finish()?;
        match (id, role, reporting_to, valid_for, expected_version, locale) {
            (
                Some(id),
                Some(role),
                Some(reporting_to),
                Some(valid_for),
                Some(expected_version),
                Some(locale),
            ) => Ok(InvitationUpdate {
                id,
                expected_version,
                role,
                reporting_to,
                valid_for,
                locale,
            }),
            _ => Err(unrecorded()),
        }
    }
}

/// A token of the wrong shape exists nowhere: `None`, answered as an unknown one.
pub fn preview_token(request: proto::PreviewInvitationRequest) -> Option<InvitationToken> {
    let proto::PreviewInvitationRequest { token } = request;
    InvitationToken::parse(&token)
}

impl TryFrom<proto::UpdateWorkspaceSettingsRequest> for SettingsUpdate {
    type Error = Error;

    fn try_from(request: proto::UpdateWorkspaceSettingsRequest) -> Result<Self, Error> {
        let proto::UpdateWorkspaceSettingsRequest { settings } = request;
        let Some(proto::WorkspaceSettings {
            seat_limit,
            allowed_email_domains,
            directory_default_role,
            accept_join_requests,
            etag,
            default_locale,
        }) = settings
        else {
            return Err(Error::invalid("settings", "must be set"));
        };
        let mut v = Violations::default();
        let expected_version = v.check("settings.etag", expected_version(&etag));
        let seat_limit = v.check(
            "settings.seat_limit",
            WorkspaceSettings::parse_seat_limit(seat_limit),
        );
        let allowed_email_domains = v.check(
            "settings.allowed_email_domains",
            WorkspaceSettings::parse_domains(&allowed_email_domains),
        );
        let default_locale = v.check(
            "settings.default_locale",
            locale::parse_optional(&default_locale).map(Option::unwrap_or_default),
        );
        let directory_default_role = if directory_default_role.is_empty() {
            Some(crate::domain::permission::AGENT.to_owned())
        } else {
            v.check(
                "settings.directory_default_role",
                parse_role_name(&directory_default_role),
            )
        };
        v.finish()?;
        match (
            seat_limit,
            allowed_email_domains,
            directory_default_role,
            expected_version,
            default_locale,
        ) {
            (
                Some(seat_limit),
                Some(allowed_email_domains),
                Some(directory_default_role),
                Some(expected_version),
                Some(default_locale),
            ) => Ok(SettingsUpdate {
                settings: WorkspaceSettings {
                    seat_limit,
                    allowed_email_domains,
                    directory_default_role,
                    accept_join_requests,
                    default_locale,
                },
                expected_version,
            }),
            _ => Err(unrecorded()),
        }
    }
}

impl TryFrom<proto::AcceptInvitationRequest> for AcceptInvitation {
    type Error = Error;

    fn try_from(request: proto::AcceptInvitationRequest) -> Result<Self, Error> {
        let proto::AcceptInvitationRequest {
            token,
            display_name,
            password,
        } = request;
        let mut v = Violations::default();
        if token.trim().is_empty() {
            v.push("token", "must not be empty");
        }
        let display_name = v.check("display_name", text::display_name(&display_name));
        let password = v.check("password", Password::parse(&password));
        v.finish()?;
        // A token of the wrong shape exists nowhere: the same answer as an unknown one.
        let token = InvitationToken::parse(&token).ok_or_else(Error::invitation_not_found)?;
        match (display_name, password) {
            (Some(display_name), Some(password)) => Ok(AcceptInvitation {
                token,
                display_name,
                password,
            }),
            _ => Err(unrecorded()),
        }
    }
}

impl TryFrom<proto::ManageUserRequest> for ManageUser {
    type Error = Error;

    fn try_from(request: proto::ManageUserRequest) -> Result<Self, Error> {
        use proto::manage_user_request::{
            Action as A, ChangeRole, ClearAccessExpiry, ClearReportingTo, Deactivate, EndSessions,
            Reactivate, SetAccessExpiry, SetReportingTo, UpdateProfile,
        };
        let fingerprint = fingerprint_of(&request, |r| r.request_id.clear());
        let proto::ManageUserRequest {
            user_id,
            etag,
            request_id,
            action,
        } = request;
        let mut v = Violations::default();
        let user_id = v.check("user_id", uuid(&user_id));
        let expected_version = v.check("etag", expected_version(&etag));
        let idempotency = v.check(
            "request_id",
            IdempotencyKey::parse(&request_id, &fingerprint),
        );
        let action = match action {
            None => {
                v.push("action", "exactly one action is required");
                None
            }
            Some(A::UpdateProfile(UpdateProfile { display_name })) => {
                let display_name = v.check(
                    "update_profile.display_name",
                    display_name.as_deref().map(text::display_name).transpose(),
                );
                display_name.map(|display_name| UserAction::UpdateProfile { display_name })
            }
            Some(A::ChangeRole(ChangeRole { role })) => v
                .check("change_role.role", parse_role_name(&role))
                .map(|role| UserAction::ChangeRole { role }),
            Some(A::SetReportingTo(SetReportingTo {
                reporting_to_user_id,
            })) => v
                .check(
                    "set_reporting_to.reporting_to_user_id",
                    uuid(&reporting_to_user_id),
                )
                .map(|manager_id| UserAction::SetReportingTo { manager_id }),
            Some(A::ClearReportingTo(ClearReportingTo {})) => Some(UserAction::ClearReportingTo),
            Some(A::Deactivate(Deactivate { reason })) => v
                .check("deactivate.reason", text::optional_text(&reason, 500))
                .map(|reason| UserAction::Deactivate { reason }),
            Some(A::Reactivate(Reactivate {})) => Some(UserAction::Reactivate),
            Some(A::EndSessions(EndSessions {})) => Some(UserAction::EndSessions),
            Some(A::SetAccessExpiry(SetAccessExpiry { expire_time })) => {
                if expire_time.is_none() {
                    v.push("set_access_expiry.expire_time", "is required");
                    None
                } else {
                    v.check("set_access_expiry.expire_time", access_expiry(expire_time))
                        .map(|expires_at| UserAction::SetAccessExpiry { expires_at })
                }
            }
            Some(A::ClearAccessExpiry(ClearAccessExpiry {})) => {
                Some(UserAction::SetAccessExpiry { expires_at: None })
            }
        };
        v.finish()?;
        match (user_id, expected_version, idempotency, action) {
            (Some(user_id), Some(expected_version), Some(idempotency), Some(action)) => {
                Ok(ManageUser {
                    user_id,
                    expected_version,
                    idempotency,
                    action,
                })
            }
            _ => Err(unrecorded()),
        }
    }
}

pub(super) fn page(v: &mut Violations, page_size: i32, page_token: String) -> Option<PageRequest> {
    v.check("page_size", pagination::page_size(page_size))
        .map(|size| PageRequest {
            size,
            token: page_token,
        })
}

/// The page of a List request that has no other field to check.
pub(super) fn list_page(page_size: i32, page_token: String) -> Result<PageRequest, Error> {
    let mut v = Violations::default();
    let page = page(&mut v, page_size, page_token);
    v.finish()?;
    page.ok_or_else(unrecorded)
}

pub(super) fn unrecorded() -> Error {
    Error::Unexpected(anyhow::anyhow!("violations recorded but not reported"))
}

pub fn list_users(
    request: proto::ListUsersRequest,
) -> Result<(UserFilter, UserOrder, PageRequest), Error> {
    let proto::ListUsersRequest {
        page_size,
        page_token,
        status,
        role,
        reporting_to_user_id,
        query,
        order_by,
        active_since,
        access_expires_before,
    } = request;
    let mut v = Violations::default();
    let page = page(&mut v, page_size, page_token);
    let status = v.check("status", user_status(status));
    let role = v.check(
        "role",
        if role.is_empty() {
            Ok(None)
        } else {
            parse_role_name(&role).map(Some)
        },
    );
    let reporting_to = v.check("reporting_to_user_id", optional_uuid(&reporting_to_user_id));
    let query = v.check("query", text::optional_text(&query, 200));
    let order = v.check("order_by", user_order(&order_by));
    let active_since = v.check("active_since", optional_time(active_since));
    let access_expires_before = v.check(
        "access_expires_before",
        optional_time(access_expires_before),
    );
    v.finish()?;
    match (
        page,
        status,
        role,
        reporting_to,
        query,
        order,
        active_since,
        access_expires_before,
    ) {
        (
            Some(page),
            Some(status),
            Some(role),
            Some(reporting_to),
            Some(query),
            Some(order),
            Some(active_since),
            Some(access_expires_before),
        ) => Ok((
            UserFilter {
                status,
                role,
                reporting_to,
                query: (!query.is_empty()).then_some(query),
                active_since,
                access_expires_before,
            },
            order,
            page,
        )),
        _ => Err(unrecorded()),
    }
}

/// The `status` filter of ListUsers.
fn user_status(status: i32) -> Result<Option<UserStatus>, String> {
    use proto::UserStatus as S;
    optional_enum(status, "is not a user status", |s| match s {
        S::Unspecified => None,
        S::Active => Some(UserStatus::Active),
        S::Deactivated => Some(UserStatus::Deactivated),
    })
}

/// `order_by` of ListUsers (AIP-132 syntax, spaces and case aside).
fn user_order(input: &str) -> Result<UserOrder, String> {
    let words: Vec<String> = input
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] | ["create_time"] | ["create_time", "asc"] => Ok(UserOrder::CreateTime),
        ["last_active_time", "desc"] => Ok(UserOrder::LastActiveTimeDesc),
        _ => Err(r#"must be "create_time" or "last_active_time desc""#.to_string()),
    }
}

/// A `SignIn` request from `client`. An unknown workspace is no input error:
/// it fails like a wrong password, so only a malformed id is refused here.
pub fn sign_in(request: proto::SignInRequest, client: Option<IpAddr>) -> Result<SignIn, Error> {
    let proto::SignInRequest {
        workspace_id,
        email,
        password,
    } = request;
    let mut v = Violations::default();
    let workspace_id = v.check("workspace_id", uuid(&workspace_id));
    let email = v.check("email", EmailAddress::parse(&email));
    let password = v.check("password", Password::parse(&password));
    v.finish()?;
    match (workspace_id, email, password) {
        (Some(workspace_id), Some(email), Some(password)) => Ok(SignIn {
            workspace_id,
            email,
            password,
            client,
        }),
        _ => Err(unrecorded()),
    }
}

pub fn list_invitations(
    request: proto::ListInvitationsRequest,
) -> Result<(InvitationFilter, PageRequest), Error> {
    let proto::ListInvitationsRequest {
        page_size,
        page_token,
        status,
        email,
    } = request;
    let mut v = Violations::default();
    let page = page(&mut v, page_size, page_token);
    let status = v.check("status", invitation_status(status));
    let email = v.check(
        "email",
        if email.trim().is_empty() {
            Ok(None)
        } else if email.len() > EmailAddress::MAX_LEN {
            Err(format!("must be at most {} bytes", EmailAddress::MAX_LEN))
        } else {
            Ok(Some(EmailAddress::normalize(&email)))
        },
    );
    v.finish()?;
    match (page, status, email) {
        (Some(page), Some(status), Some(email_normalized)) => Ok((
            InvitationFilter {
                status,
                email_normalized,
            },
            page,
        )),
        _ => Err(unrecorded()),
    }
}

/// The `status` filter of ListInvitations.
fn invitation_status(status: i32) -> Result<Option<InvitationStatus>, String> {
    use proto::InvitationStatus as S;
    optional_enum(status, "is not an invitation status", |s| match s {
        S::Unspecified => None,
        S::Pending => Some(InvitationStatus::Pending),
        S::Accepted => Some(InvitationStatus::Accepted),
        S::Revoked => Some(InvitationStatus::Revoked),
        S::Expired => Some(InvitationStatus::Expired),
    })
}

pub fn list_activity(
    request: proto::ListActivityRequest,
) -> Result<(ActivityFilter, PageRequest), Error> {
    let proto::ListActivityRequest {
        page_size,
        page_token,
        actor_user_id,
        target_user_id,
        action,
        start_time,
        end_time,
    } = request;
    let mut v = Violations::default();
    let page = page(&mut v, page_size, page_token);
    let actor_id = v.check("actor_user_id", optional_uuid(&actor_user_id));
    let target_user_id = v.check("target_user_id", optional_uuid(&target_user_id));
    let action = v.check(
        "action",
        if action.is_empty() {
            Ok(None)
        } else {
            Action::parse(&action)
                .map(Some)
                .ok_or_else(|| "is not an activity action".to_string())
        },
    );
    let from = v.check("start_time", optional_time(start_time));
    let until = v.check("end_time", optional_time(end_time));
    v.finish()?;
    match (page, actor_id, target_user_id, action, from, until) {
        (
            Some(page),
            Some(actor_id),
            Some(target_user_id),
            Some(action),
            Some(from),
            Some(until),
        ) => Ok((
            ActivityFilter {
                actor_id,
                target_user_id,
                action,
                from,
                until,
            },
            page,
        )),
        _ => Err(unrecorded()),
    }
}

pub fn resend_validity(expires_in: Option<prost_types::Duration>) -> Result<time::Duration, Error> {
    duration(expires_in)
        .and_then(Validity::parse)
        .map_err(|description| Error::invalid("expires_in", description))
}

/// The address of GetEmailSuppression.
pub fn suppressed_email(request: proto::GetEmailSuppressionRequest) -> Result<EmailAddress, Error> {
    let proto::GetEmailSuppressionRequest { email } = request;
    EmailAddress::parse(&email).map_err(|description| Error::invalid("email", description))
}

/// The address of ClearEmailSuppression, and its request id.
pub fn clear_email_suppression(
    request: proto::ClearEmailSuppressionRequest,
) -> Result<(EmailAddress, Option<IdempotencyKey>), Error> {
    let fingerprint = fingerprint_of(&request, |r| r.request_id.clear());
    let proto::ClearEmailSuppressionRequest { email, request_id } = request;
    let mut v = Violations::default();
    let email = v.check("email", EmailAddress::parse(&email));
    let idempotency = v.check(
        "request_id",
        IdempotencyKey::parse(&request_id, &fingerprint),
    );
    v.finish()?;
    email.zip(idempotency).ok_or_else(unrecorded)
}

/// The token of Unsubscribe: required; checked by the operation.
pub fn unsubscribe_token(request: proto::UnsubscribeRequest) -> Result<String, Error> {
    let proto::UnsubscribeRequest { token } = request;
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::invalid("token", "is required"));
    }
    Ok(token.to_owned())
}
