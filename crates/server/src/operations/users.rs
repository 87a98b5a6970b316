//! Managing members: profile, role, manager, activation; and reading them.

use std::sync::Arc;

use uuid::Uuid;

use super::{
    AppState, PageRequest,
    rules::{ensure_active_manager, ensure_other_owner, ensure_seat_free},
    unit_of_work::{self, FirstLock, Mutation, Outcome, Target, Work},
};
use crate::{
    auth::Caller,
    domain::{
        Error, Reason,
        activity::{Action, FieldChange},
        directory::{DIRECTORY_OWNED_FIELDS, DirectoryState},
        pagination::{decode_optional_page_token, encode_optional_page_token, filter_digest},
        permission::{Permission, Role},
        user::{ACCESS_EXPIRED_REASON, ManageUser, User, UserAction, UserStatus},
    },
    events,
    store::{
        directory,
        user_listing::{self, PageQuery, TotalSize, UserFilter, UserOrder},
        users,
    },
};

pub async fn manage(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    command: ManageUser,
) -> Result<User, Error> {
    let command = &command;
    let mutation = Mutation::new("ManageUser", Permission::UsersManage, request_id)
        .idempotent(command.idempotency.as_ref())
        // One membership change at a time per workspace: the last-owner,
        // seat and no-cycle rules read other users' rows.
        .locking(FirstLock::Workspace);
    let managed = unit_of_work::run(state, caller, mutation, |work| async move {
        let (current, current_role) = work.user(command.user_id).await?;
        Error::unless_current(command.expected_version, current.version, "user")?;
        ensure_not_directory_owned(&work, &current, &command.action).await?;
        if command.action == UserAction::EndSessions {
            // No field of the user changes: their tokens stop being accepted.
            let ended = users::end_sessions(work.tx(), current.workspace_id, current.id)
                .await?
                .ok_or_else(Error::user_not_found)?;
            let action = Action::UserSessionsEnded;
            let changes = vec![FieldChange::sessions_ended(ended)];
            let event =
                events::user_changed(action, &current, work.caller.user_id, &changes, request_id);
            let recorded = work.record(action, Target::User(current.id), changes, event)?;
            tracing::info!(user_id = %current.id, "ending the user's sessions");
            return work.finish(Outcome::Changed(current, recorded)).await;
        }
        let Some((action, next, changes)) =
            apply(&work, &current, &current_role, command.action.clone()).await?
        else {
            // Nothing to change: the user already is as asked.
            return work.finish(Outcome::Unchanged(current)).await;
        };
        let updated = users::update(work.tx(), &next).await?;
        let event =
            events::user_changed(action, &updated, work.caller.user_id, &changes, request_id);
        let recorded = work.record(action, Target::User(updated.id), changes, event)?;
        tracing::info!(user_id = %updated.id, action = action.as_str(), "changing the user");
        work.finish(Outcome::Changed(updated, recorded)).await
    })
    .await?;
    // The user (and maybe a caller) changed: every replica's cache knows
    // before the answer, so GetUser anywhere reads the change.
    state.callers.sync(&state.pool).await;
    Ok(managed)
}

/// Applies `action` to a copy of `current`: the action to record, the user
/// to write and what changed; `None` when nothing would change.
async fn apply(
    work: &Work<'_>,
    current: &User,
    current_role: &Role,
    action: UserAction,
) -> Result<Option<(Action, User, Vec<FieldChange>)>, Error> {
    let mut next = current.clone();
    let mut changes = Vec::new();
    let recorded = match action {
        UserAction::UpdateProfile { display_name } => {
            if let Some(name) = display_name
                && name != current.display_name
            {
                changes.push(FieldChange::new(
                    "display_name",
                    &current.display_name,
                    &name,
                ));
                next.display_name = name;
            }
            Action::UserUpdated
        }
        UserAction::ChangeRole { role } => {
            let role = work.grantable_role("change_role.role", &role).await?;
            if role.name != current.role {
                if current_role.is_owner() && !role.is_owner() {
                    ensure_other_owner(work.tx(), current).await?;
                }
                changes.push(FieldChange::new("role", &current.role, &role.name));
                next.role = role.name;
            }
            Action::UserRoleChanged
        }
        UserAction::SetReportingTo { manager_id } => {
            let field = "set_reporting_to.reporting_to_user_id";
            if manager_id == current.id
                || users::is_in_management_chain(
                    work.tx(),
                    current.workspace_id,
                    manager_id,
                    current.id,
                )
                .await?
            {
                return Err(Error::precondition(
                    Reason::ReportingCycle,
                    "the change would make a reporting cycle",
                ));
            }
            ensure_active_manager(work.tx(), current.workspace_id, manager_id, field).await?;
            if current.reporting_to != Some(manager_id) {
                changes.push(FieldChange::new(
                    "reporting_to",
                    optional(current.reporting_to),
                    manager_id,
                ));
                next.reporting_to = Some(manager_id);
            }
            Action::UserReportingToChanged
        }
        UserAction::ClearReportingTo => {
            if let Some(previous) = current.reporting_to {
                changes.push(FieldChange::new("reporting_to", previous, ""));
                next.reporting_to = None;
            }
            Action::UserReportingToChanged
        }
        UserAction::Deactivate { reason } => {
            if current.status == UserStatus::Active {
                if current_role.is_owner() {
                    ensure_other_owner(work.tx(), current).await?;
                }
                changes.push(FieldChange::new("status", "ACTIVE", "DEACTIVATED"));
                changes.push(FieldChange::new("deactivation_reason", "", &reason));
                next.status = UserStatus::Deactivated;
                next.deactivation_reason = Some(reason);
            }
            Action::UserDeactivated
        }
        UserAction::Reactivate => {
            if current.status == UserStatus::Deactivated {
                if current.access_expired_at(time::OffsetDateTime::now_utc()) {
                    return Err(Error::precondition(
                        Reason::UserAccessExpired,
                        "the user's access has ended; extend or clear its expiry instead",
                    ));
                }
                // A reactivated user takes a seat again.
                ensure_seat_free(work.tx(), current.workspace_id, &work.settings().await?).await?;
                changes.push(FieldChange::new("status", "DEACTIVATED", "ACTIVE"));
                next.status = UserStatus::Active;
                next.deactivation_reason = None;
            }
            Action::UserReactivated
        }
        UserAction::SetAccessExpiry { expires_at } => {
            if expires_at.is_some() && current_role.is_owner() {
                // An owner whose access lapses must not be the last one.
                ensure_other_owner(work.tx(), current).await?;
            }
            if expires_at != current.access_expires_at {
                changes.push(FieldChange::new(
                    "access_expire_time",
                    optional_time(current.access_expires_at),
                    optional_time(expires_at),
                ));
                next.access_expires_at = expires_at;
            }
            // Access that lapsed comes back when it is extended: the sweep's
            // deactivation is undone (any other deactivation stays).
            if current.status == UserStatus::Deactivated
                && current.deactivation_reason.as_deref() == Some(ACCESS_EXPIRED_REASON)
                && !next.access_expired_at(time::OffsetDateTime::now_utc())
            {
                ensure_seat_free(work.tx(), current.workspace_id, &work.settings().await?).await?;
                changes.push(FieldChange::new("status", "DEACTIVATED", "ACTIVE"));
                next.status = UserStatus::Active;
                next.deactivation_reason = None;
            }
            Action::UserAccessExpiryChanged
        }
        // Handled before `apply`: it changes no field of the user.
        UserAction::EndSessions => Action::UserSessionsEnded,
    };
    Ok((!changes.is_empty()).then_some((recorded, next, changes)))
}

/// Refuses a person's change of a field the directory owns (see
/// [`DIRECTORY_OWNED_FIELDS`]) on a member it holds: the directory would
/// undo it on its next sync.
async fn ensure_not_directory_owned(
    work: &Work<'_>,
    current: &User,
    action: &UserAction,
) -> Result<(), Error> {
    let touches_owned = matches!(
        action,
        UserAction::UpdateProfile {
            display_name: Some(_)
        } | UserAction::Deactivate { .. }
            | UserAction::Reactivate
    );
    if touches_owned
        && directory::state_of(work.tx(), current.workspace_id, current.id).await?
            == Some(DirectoryState::Linked)
    {
        return Err(Error::precondition(
            Reason::UserManagedByDirectory,
            format!(
                "the user is managed by the workspace's directory (SCIM), which owns: {}; \
                 change them there",
                DIRECTORY_OWNED_FIELDS.join(", ")
            ),
        ));
    }
    Ok(())
}

fn optional(id: Option<Uuid>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

fn optional_time(at: Option<time::OffsetDateTime>) -> String {
    at.and_then(|at| {
        at.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_default()
}

/// The user as of now, from the replica's cache while it is trusted (see
/// `auth::cache`).
pub async fn get(state: &AppState, caller: &Caller, user_id: Uuid) -> Result<Arc<User>, Error> {
    caller.require(Permission::UsersRead)?;
    state
        .callers
        .user(&state.pool, caller.workspace_id, user_id)
        .await?
        .ok_or_else(Error::user_not_found)
}

/// A page of users, and how many match in all.
pub struct UserPage {
    pub items: Vec<User>,
    pub next_page_token: String,
    pub total_size: TotalSize,
}

/// `exact_count_up_to`: above this many matches `total_size` is an estimate
/// (see [`users::count`]).
pub async fn list(
    state: &AppState,
    caller: &Caller,
    filter: UserFilter,
    order: UserOrder,
    page: PageRequest,
    exact_count_up_to: i64,
) -> Result<UserPage, Error> {
    caller.require(Permission::UsersRead)?;
    // The order is part of what a token continues: its sort key means
    // nothing in another order.
    let filters = filter_digest(&format!("users|{order:?}|{filter:?}"));
    let key = state.page_key().await?;
    let after = decode_optional_page_token(key, &page.token, filters)?;
    let client = state.connection().await?;
    let (mut items, total_size) = user_listing::page_and_total(
        &client,
        &PageQuery {
            workspace_id: caller.workspace_id,
            filter: &filter,
            order,
            after,
            limit: page.size + 1,
            exact_count_up_to,
        },
    )
    .await?;
    // One extra row was fetched to learn whether a next page exists.
    let size = usize::try_from(page.size).unwrap_or(usize::MAX);
    let next_page_token = if items.len() > size {
        items.truncate(size);
        items
            .last()
            .map(|last| encode_optional_page_token(key, order.cursor(last), filters))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(UserPage {
        items,
        next_page_token,
        total_size,
    })
}
