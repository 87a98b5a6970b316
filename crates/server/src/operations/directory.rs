//! Provisioning by a directory (SCIM): its tokens, and the members it
//! creates, changes and lets go of, under every rule a person's change
//! obeys (seats, email domains, the last owner, role rank, reporting
//! cycles), each change with its activity entry and event.

use std::num::NonZeroU32;

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use uuid::Uuid;

use super::{
    AppState, Page, PageRequest,
    rules::ensure_seat_free,
    unit_of_work::{self, FirstLock, Mutation, Outcome, Recorded, Target, Work},
};
use crate::{
    auth::{Caller, password::NO_PASSWORD},
    domain::{
        EmailAddress, Error, Reason,
        activity::{Action, FieldChange},
        directory::{Condition, DirectoryFields, DirectorySecret, DirectoryState},
        pagination::Cursor,
        permission::Permission,
        user::{User, UserStatus},
    },
    events,
    store::{
        Lock,
        directory::{self, DirectoryMember, DirectoryToken, MemberWrite, NewMember},
        directory_groups,
        users::{self, NewUser},
    },
};

/// Why a member the directory let go of reads as deactivated.
const DETACHED_REASON: &str = "removed by the directory";
/// Why a member the directory deactivated reads as deactivated.
const DEACTIVATED_REASON: &str = "deactivated by the directory";

/// Each directory token's requests on this replica, as a token bucket: a
/// flood from one identity provider (or a leaked token) gets 429 with
/// Retry-After and leaves the replica to everyone else. Kept in memory, not
/// shared: a shared bucket would make every SCIM call a write on one row.
pub struct DirectoryLimit {
    limiter: Option<DefaultKeyedRateLimiter<Uuid>>,
    clock: DefaultClock,
}

impl DirectoryLimit {
    pub const DEFAULT_PER_MINUTE: u32 = 6000;

    pub fn new(per_minute: u32) -> Self {
        DirectoryLimit {
            limiter: NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            clock: DefaultClock::default(),
        }
    }

    /// Admits one request of `caller`, a directory; refuses it when its
    /// token's budget is spent.
    pub fn admit(&self, caller: &Caller) -> Result<(), Error> {
        let (Some(limiter), Some(token)) = (&self.limiter, caller.directory_token_id) else {
            return Ok(());
        };
        limiter.check_key(&token).map_err(|not_until| {
            Error::rate_limited(
                Reason::DirectoryRateLimited,
                "the directory token's requests per minute are spent; retry later",
                not_until.wait_time_from(self.clock.now()),
            )
        })
    }
}

fn member_not_found() -> Error {
    Error::user_not_found()
}

fn token_not_found() -> Error {
    Error::not_found(Reason::DirectoryTokenNotFound, "directory token not found")
}

fn taken(what: &str) -> Error {
    Error::AlreadyExists {
        reason: Reason::DirectoryUserExists,
        message: format!("a member the directory holds already has this {what}"),
    }
}

fn mutation<'a>(
    operation: &'static str,
    request_id: &'a str,
    first_lock: FirstLock<'a>,
) -> Mutation<'a> {
    Mutation::new(operation, Permission::ScimManage, request_id).locking(first_lock)
}

/// Mints a token; its secret is returned this once.
pub async fn create_token(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    display_name: String,
) -> Result<(DirectoryToken, DirectorySecret), Error> {
    let secret = DirectorySecret::generate();
    let hash = secret.hash();
    let display_name = &display_name;
    let mutation = mutation("CreateDirectoryToken", request_id, FirstLock::Nothing);
    let token = unit_of_work::run(state, caller, mutation, |work| async move {
        let token = directory::insert_token(
            work.tx(),
            &DirectoryToken {
                id: Uuid::now_v7(),
                workspace_id: work.workspace_id(),
                display_name: display_name.clone(),
                created_by: work.caller.user_id,
                created_at: time::OffsetDateTime::now_utc(),
                last_used_at: None,
                revoked_at: None,
            },
            &hash,
        )
        .await?;
        let changes = vec![FieldChange::new("directory_token", "", token.id)];
        let recorded = record_token(&work, Action::DirectoryTokenCreated, &token, changes)?;
        tracing::info!(token_id = %token.id, "minted a directory token");
        work.finish(Outcome::Changed(token, recorded)).await
    })
    .await?;
    Ok((token, secret))
}

pub async fn list_tokens(
    state: &AppState,
    caller: &Caller,
    page: PageRequest,
) -> Result<Page<DirectoryToken>, Error> {
    let (page, client) = page
        .open(state, caller, Permission::ScimManage, "directory_tokens")
        .await?;
    let (items, total) =
        directory::list_tokens(&client, caller.workspace_id, page.window()).await?;
    Ok(page.page(items, total, |token| {
        Cursor::new(token.created_at, token.id)
    }))
}

/// Revokes a token; revoking a revoked one changes nothing.
pub async fn revoke_token(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    token_id: Uuid,
) -> Result<DirectoryToken, Error> {
    let mutation = mutation("RevokeDirectoryToken", request_id, FirstLock::Nothing);
    unit_of_work::run(state, caller, mutation, |work| async move {
        let Some(token) = directory::revoke_token(work.tx(), work.workspace_id(), token_id).await?
        else {
            let token = directory::TOKENS
                .get(work.tx(), work.workspace_id(), token_id, Lock::None)
                .await?
                .ok_or_else(token_not_found)?;
            return work.finish(Outcome::Unchanged(token)).await;
        };
        let changes = vec![FieldChange::new("directory_token", token.id, "")];
        let recorded = record_token(&work, Action::DirectoryTokenRevoked, &token, changes)?;
        tracing::info!(token_id = %token.id, "revoked a directory token");
        work.finish(Outcome::Changed(token, recorded)).await
    })
    .await
}

pub async fn get_user(
    state: &AppState,
    caller: &Caller,
    user_id: Uuid,
) -> Result<DirectoryMember, Error> {
    caller.require(Permission::ScimManage)?;
    let client = state.connection().await?;
    directory::get_member(&client, caller.workspace_id, user_id, false, Lock::None)
        .await?
        .ok_or_else(member_not_found)
}

pub async fn list_users(
    state: &AppState,
    caller: &Caller,
    conditions: &[Condition],
    offset: i64,
    limit: i64,
) -> Result<(Vec<DirectoryMember>, i64), Error> {
    caller.require(Permission::ScimManage)?;
    let client = state.connection().await?;
    directory::list_members(&client, caller.workspace_id, conditions, offset, limit).await
}

/// Creates a member, or takes over the member no directory holds that has
/// the email.
pub async fn create_user(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    mut fields: DirectoryFields,
) -> Result<DirectoryMember, Error> {
    caller.require(Permission::ScimManage)?;
    let password_hash = hash(state, &mut fields).await?;
    match insert_user(state, caller, request_id, &fields, password_hash.as_deref()).await {
        // A member has the email: taken over unless a directory holds it.
        Err(Error::AlreadyExists {
            reason: Reason::UserAlreadyMember,
            ..
        }) => {
            let client = state.connection().await?;
            let existing = directory::member_with_email(
                &client,
                caller.workspace_id,
                fields.email.normalized(),
                Lock::None,
            )
            .await?
            .ok_or_else(|| taken("email"))?;
            drop(client);
            if existing.state == Some(DirectoryState::Linked) {
                return Err(taken("email"));
            }
            change_user(
                state,
                caller,
                request_id,
                "CreateDirectoryUser",
                existing.user.id,
                Change::TakeOver(fields, password_hash),
                None,
            )
            .await
        }
        other => other,
    }
}

/// The hash of the password `fields` carry, if any (taken out of them).
async fn hash(state: &AppState, fields: &mut DirectoryFields) -> Result<Option<String>, Error> {
    match fields.password.take() {
        Some(password) => Ok(Some(state.hasher.hash(password).await?)),
        None => Ok(None),
    }
}

/// Inserts a new member the directory holds. A member who already has the
/// email is `AlreadyExists` with USER_ALREADY_MEMBER (for `create_user`).
async fn insert_user(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    fields: &DirectoryFields,
    password_hash: Option<&str>,
) -> Result<DirectoryMember, Error> {
    let password_hash = password_hash.unwrap_or(NO_PASSWORD);
    let workspace_id = caller.workspace_id;
    // Members are created side by side, as invitations are; with a seat
    // limit, seat-taking changes take turns.
    let mutation = mutation("CreateDirectoryUser", request_id, FirstLock::Seats);
    unit_of_work::run(state, caller, mutation, |work| async move {
        // Read with the workspace's lock: no round trip of its own.
        let settings = work.settings().await?;
        let role = work
            .grantable_role("default_role", &settings.directory_default_role)
            .await?;
        if let Some(manager_id) = fields.manager_id {
            ensure_manager(work.tx(), workspace_id, manager_id).await?;
        }
        ensure_email_allowed(&settings, fields)?;
        if fields.active {
            ensure_seat_free(work.tx(), workspace_id, &settings).await?;
        }
        let member = directory::insert_member(
            work.tx(),
            &NewMember {
                user: NewUser {
                    workspace_id,
                    id: Uuid::now_v7(),
                    email: fields.email.as_typed(),
                    email_normalized: fields.email.normalized(),
                    display_name: &fields.display_name,
                    role: &role.name,
                    reporting_to: fields.manager_id,
                    password_hash,
                    // A directory's member has no access expiry of its own.
                    access_expires_at: None,
                },
                status: if fields.active {
                    UserStatus::Active
                } else {
                    UserStatus::Deactivated
                },
                deactivation_reason: (!fields.active).then_some(DEACTIVATED_REASON),
                user_name: &fields.user_name,
                external_id: fields.external_id.as_deref(),
                profile: &fields.profile,
            },
        )
        .await?
        .map_err(|key| match key {
            "email" => Error::AlreadyExists {
                reason: Reason::UserAlreadyMember,
                message: "a member of the workspace already has this email".into(),
            },
            key => taken(key),
        })?;
        let changes = vec![
            FieldChange::new("email", "", &member.user.email),
            FieldChange::new("role", "", &member.user.role),
            FieldChange::new("status", "", member.user.status.as_str()),
            FieldChange::new("directory_user_name", "", &fields.user_name),
        ];
        let event = events::user_changed(
            Action::UserProvisioned,
            &member.user,
            &work.caller,
            &changes,
            request_id,
        );
        let recorded = work.record(
            Action::UserProvisioned,
            Target::User(member.user.id),
            changes,
            event,
        )?;
        tracing::info!(user_id = %member.user.id, "the directory created a member");
        work.finish(Outcome::Changed(member, recorded)).await
    })
    .await
}

/// Replaces what the directory holds of a member (and takes it over).
pub async fn replace_user(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    user_id: Uuid,
    mut fields: DirectoryFields,
    expected_version: Option<i64>,
) -> Result<DirectoryMember, Error> {
    caller.require(Permission::ScimManage)?;
    let password_hash = hash(state, &mut fields).await?;
    change_user(
        state,
        caller,
        request_id,
        "ReplaceDirectoryUser",
        user_id,
        Change::Replace(fields, password_hash),
        expected_version,
    )
    .await
}

/// Deactivates the member and lets go of it.
pub async fn delete_user(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    user_id: Uuid,
) -> Result<(), Error> {
    caller.require(Permission::ScimManage)?;
    change_user(
        state,
        caller,
        request_id,
        "DeleteDirectoryUser",
        user_id,
        Change::Detach,
        None,
    )
    .await?;
    Ok(())
}

/// What a directory does to a member that exists; a new password's hash
/// goes with the fields.
enum Change {
    /// Replace, on a member it may already hold.
    Replace(DirectoryFields, Option<String>),
    /// Create, on a member with that email that no directory holds.
    TakeOver(DirectoryFields, Option<String>),
    /// Delete.
    Detach,
}

async fn change_user(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    operation: &'static str,
    user_id: Uuid,
    change: Change,
    expected_version: Option<i64>,
) -> Result<DirectoryMember, Error> {
    let change = &change;
    let password_hash = match change {
        Change::Replace(_, hash) | Change::TakeOver(_, hash) => hash.as_deref(),
        Change::Detach => None,
    };
    // The last-owner, seat and no-cycle rules read other users' rows.
    let mutation = mutation(operation, request_id, FirstLock::Workspace);
    let changed = unit_of_work::run(state, caller, mutation, |work| async move {
        // A member the directory let go of is found again only by its email.
        let detached = matches!(change, Change::TakeOver(..));
        let current = directory::get_member(work.tx(), work.workspace_id(), user_id, detached, Lock::Update)
            .await?
            .ok_or_else(member_not_found)?;
        // Read locked above: only its role is checked against the caller's.
        let current_role = work.role_of_target(&current.user).await?;
        Error::unless_current(expected_version, current.user.version, "user")?;
        let is_owner = current_role.is_owner();
        let (next, write, mut changes) = match change {
            Change::Detach => {
                let mut next = current.user.clone();
                next.status = UserStatus::Deactivated;
                next.deactivation_reason = Some(DETACHED_REASON.into());
                let write = MemberWrite {
                    state: DirectoryState::Detached,
                    user_name: None,
                    external_id: None,
                    profile: None,
                    email: current.user.email.clone(),
                    email_normalized: EmailAddress::normalize(&current.user.email),
                    password_hash: None,
                };
                let was = current.state.map_or("", DirectoryState::as_str);
                let changes = vec![FieldChange::new("directory_state", was, "DETACHED")];
                (next, write, changes)
            }
            Change::Replace(fields, _) | Change::TakeOver(fields, _) => {
                if matches!(change, Change::TakeOver(..)) && current.state == Some(DirectoryState::Linked) {
                    return Err(taken("email"));
                }
                planned(&work, &current, fields, password_hash).await?
            }
        };
        if current.user.status == UserStatus::Active && next.status == UserStatus::Deactivated {
            if is_owner && users::count_other_active_owners(work.tx(), current.user.workspace_id, current.user.id).await? == 0 {
                return Err(Error::precondition(
                    Reason::LastOwner,
                    "the workspace's last active owner cannot be deactivated",
                ));
            }
            changes.push(FieldChange::new("status", "ACTIVE", "DEACTIVATED"));
        }
        if current.user.status == UserStatus::Deactivated && next.status == UserStatus::Active {
            ensure_seat_free(work.tx(), current.user.workspace_id, &work.settings().await?).await?;
            changes.push(FieldChange::new("status", "DEACTIVATED", "ACTIVE"));
        }
        let unchanged = changes.is_empty()
            && password_hash.is_none()
            && current.state == Some(write.state)
            && current.profile.as_ref() == write.profile.as_ref();
        if unchanged {
            return work.finish(Outcome::Unchanged(current)).await;
        }
        let member = directory::write_member(work.tx(), &next, &write)
            .await?
            .map_err(taken)?;
        if matches!(change, Change::Detach) {
            // Let go of: out of the directory's groups too.
            let workspace_id = member.user.workspace_id;
            for group in directory_groups::remove_from_all(work.tx(), workspace_id, user_id).await? {
                directory_groups::touch(work.tx(), workspace_id, group).await?;
            }
        }
        let action = match (current.user.status, member.user.status) {
            (UserStatus::Active, UserStatus::Deactivated) => Action::UserDeactivated,
            (UserStatus::Deactivated, UserStatus::Active) => Action::UserReactivated,
            _ => Action::UserUpdated,
        };
        let event = events::user_changed(action, &member.user, &work.caller, &changes, request_id);
        let recorded = work.record(action, Target::User(member.user.id), changes, event)?;
        tracing::info!(user_id = %member.user.id, action = action.as_str(), "the directory changed a member");
        work.finish(Outcome::Changed(member, recorded)).await
    })
    .await?;
    // A deactivation refuses the user's next call on every replica.
    state.callers.sync(&state.pool).await;
    Ok(changed)
}

/// The user, the directory's columns and the changes that `fields` make of
/// `current`, checked against the rules that concern them alone.
async fn planned(
    work: &Work<'_>,
    current: &DirectoryMember,
    fields: &DirectoryFields,
    password_hash: Option<&str>,
) -> Result<(User, MemberWrite, Vec<FieldChange>), Error> {
    let workspace_id = current.user.workspace_id;
    let mut next = current.user.clone();
    let mut changes = Vec::new();
    if fields.display_name != current.user.display_name {
        changes.push(FieldChange::new(
            "display_name",
            &current.user.display_name,
            &fields.display_name,
        ));
        next.display_name = fields.display_name.clone();
    }
    if fields.email.normalized() != EmailAddress::normalize(&current.user.email) {
        ensure_email_allowed(&work.settings().await?, fields)?;
    }
    if fields.email.as_typed() != current.user.email {
        changes.push(FieldChange::new(
            "email",
            &current.user.email,
            fields.email.as_typed(),
        ));
    }
    if fields.manager_id != current.user.reporting_to {
        if let Some(manager_id) = fields.manager_id {
            if manager_id == current.user.id
                || users::is_in_management_chain(
                    work.tx(),
                    workspace_id,
                    manager_id,
                    current.user.id,
                )
                .await?
            {
                return Err(Error::precondition(
                    Reason::ReportingCycle,
                    "the change would make a reporting cycle",
                ));
            }
            ensure_manager(work.tx(), workspace_id, manager_id).await?;
        }
        let id = |id: Option<Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
        changes.push(FieldChange::new(
            "reporting_to",
            id(current.user.reporting_to),
            id(fields.manager_id),
        ));
        next.reporting_to = fields.manager_id;
    }
    if current.user_name.as_deref() != Some(fields.user_name.as_str()) {
        changes.push(FieldChange::new(
            "directory_user_name",
            current.user_name.as_deref().unwrap_or_default(),
            &fields.user_name,
        ));
    }
    if current.external_id != fields.external_id {
        changes.push(FieldChange::new(
            "directory_external_id",
            current.external_id.as_deref().unwrap_or_default(),
            fields.external_id.as_deref().unwrap_or_default(),
        ));
    }
    if fields.active {
        next.status = UserStatus::Active;
        next.deactivation_reason = None;
    } else if current.user.status == UserStatus::Active {
        next.status = UserStatus::Deactivated;
        next.deactivation_reason = Some(DEACTIVATED_REASON.into());
    }
    let write = MemberWrite {
        state: DirectoryState::Linked,
        user_name: Some(fields.user_name.clone()),
        external_id: fields.external_id.clone(),
        profile: Some(fields.profile.clone()),
        email: fields.email.as_typed().to_owned(),
        email_normalized: fields.email.normalized().to_owned(),
        password_hash: password_hash.map(str::to_owned),
    };
    Ok((next, write, changes))
}

/// A directory's manager is a member of the workspace, in whatever status:
/// the directory is the source of truth, and a report of a manager who left
/// still names them until the directory says otherwise.
async fn ensure_manager(
    tx: &impl crate::store::GenericClient,
    workspace_id: Uuid,
    manager_id: Uuid,
) -> Result<(), Error> {
    match users::USERS
        .get(tx, workspace_id, manager_id, Lock::None)
        .await?
    {
        Some(_) => Ok(()),
        None => Err(Error::invalid_with(
            Reason::ReportingToNotFound,
            "fields.manager_user_id",
            "no such user in this workspace",
        )),
    }
}

fn ensure_email_allowed(
    settings: &crate::domain::workspace::WorkspaceSettings,
    fields: &DirectoryFields,
) -> Result<(), Error> {
    if settings.allows_email(&fields.email) {
        Ok(())
    } else {
        Err(Error::precondition(
            Reason::EmailDomainNotAllowed,
            "the workspace does not allow members with this email domain",
        ))
    }
}

/// Records a change of `token` (the workspace's activity, and its event).
fn record_token(
    work: &Work<'_>,
    action: Action,
    token: &DirectoryToken,
    changes: Vec<FieldChange>,
) -> Result<Recorded, Error> {
    let event =
        events::directory_token_changed(action, token, work.caller.user_id, work.request_id);
    work.record(action, Target::Workspace, changes, event)
}
