//! The permission catalog, the workspace's custom roles (create, update,
//! delete, list) and permission checks for other services.
//!
//! Built-in roles live in code and never change; custom roles live in
//! Postgres, one row per (workspace, name). Nobody creates, changes or
//! deletes a role holding a permission they lack.

use uuid::Uuid;

use super::{
    AppState, Page, PageRequest,
    unit_of_work::{self, FirstLock, Mutation, Outcome, Recorded, Target, Work},
};
use crate::{
    auth::Caller,
    domain::{
        Error, Reason,
        activity::{Action, FieldChange},
        pagination::{decode_name_page_token, encode_name_page_token, filter_digest},
        permission::{
            BUILT_IN, CustomRole, NewRole, Permission, PermissionSet, Role, RoleDeletion,
            RoleUpdate,
        },
    },
    events,
    store::roles,
};

/// One role of a listing.
pub enum ListedRole {
    BuiltIn(Role),
    Custom(CustomRole),
}

impl ListedRole {
    pub fn name(&self) -> &str {
        match self {
            ListedRole::BuiltIn(role) => &role.name,
            ListedRole::Custom(custom) => &custom.role.name,
        }
    }
}

/// Where a role name stands in a listing: the built-in roles first, in
/// their order, then the custom ones by name.
fn listing_order(name: &str) -> (usize, String) {
    let rank = BUILT_IN
        .iter()
        .position(|builtin| *builtin == name)
        .unwrap_or(BUILT_IN.len());
    (rank, name.to_owned())
}

/// The answer of `CheckPermission`.
#[derive(Debug, Clone)]
pub struct PermissionCheck {
    pub allowed: bool,
    pub role: String,
}

fn role_exists(name: &str) -> Error {
    Error::AlreadyExists {
        reason: Reason::RoleExists,
        message: format!("a role named {name:?} already exists"),
    }
}

/// Refuses a caller lacking one of `permissions`.
fn require_holds(work: &Work<'_>, name: &str, permissions: PermissionSet) -> Result<(), Error> {
    work.require_not_below(&Role {
        name: name.to_owned(),
        permissions,
    })
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    new: NewRole,
) -> Result<CustomRole, Error> {
    if Role::builtin(&new.name).is_some() {
        caller.require(Permission::RolesManage)?;
        return Err(role_exists(&new.name));
    }
    let new = &new;
    let mutation = Mutation::new("CreateRole", Permission::RolesManage, request_id)
        .idempotent(new.idempotency.as_ref());
    let created = unit_of_work::run(state, caller, mutation, |work| async move {
        require_holds(&work, &new.name, new.permissions)?;
        let role = Role {
            name: new.name.clone(),
            permissions: new.permissions,
        };
        let created = roles::insert(work.tx(), work.workspace_id(), &role)
            .await?
            .ok_or_else(|| role_exists(&role.name))?;
        let changes = vec![
            FieldChange::new("name", "", &created.role.name),
            FieldChange::new("permissions", "", created.role.permissions),
        ];
        let recorded = write_record(&work, Action::RoleCreated, &created, changes).await?;
        work.finish(Outcome::Changed(created, recorded)).await
    })
    .await?;
    tracing::info!(role = %created.role.name, "role created");
    Ok(created)
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    update: RoleUpdate,
) -> Result<CustomRole, Error> {
    let update = &update;
    let mutation = Mutation::new("UpdateRole", Permission::RolesManage, request_id)
        .idempotent(update.idempotency.as_ref())
        .locking(FirstLock::CustomRole(&update.name));
    let updated = unit_of_work::run(state, caller, mutation, |work| async move {
        // Neither the role as it is nor as it becomes may be above the caller.
        let current = work.locked_role()?.clone();
        Error::unless_current(update.expected_version, current.version, "role")?;
        require_holds(&work, &update.name, update.permissions)?;
        if update.permissions == current.role.permissions {
            return work.finish(Outcome::Unchanged(current)).await;
        }
        let next = Role {
            name: current.role.name.clone(),
            permissions: update.permissions,
        };
        let updated = roles::update(work.tx(), work.workspace_id(), &next).await?;
        let changes = vec![FieldChange::new(
            "permissions",
            current.role.permissions,
            updated.role.permissions,
        )];
        let recorded = write_record(&work, Action::RoleUpdated, &updated, changes).await?;
        tracing::info!(role = %updated.role.name, "updating the role");
        work.finish(Outcome::Changed(updated, recorded)).await
    })
    .await?;
    // Its holders' very next call, on any replica, knows.
    state.callers.sync(&state.pool).await;
    Ok(updated)
}

pub async fn delete(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    deletion: RoleDeletion,
) -> Result<CustomRole, Error> {
    let deletion = &deletion;
    let mutation = Mutation::new("DeleteRole", Permission::RolesManage, request_id)
        .idempotent(deletion.idempotency.as_ref())
        // Locked first: an assignment of the role (which share-locks it)
        // either committed before, and is seen below, or waits and then
        // finds no role.
        .locking(FirstLock::CustomRole(&deletion.name));
    let deleted = unit_of_work::run(state, caller, mutation, |work| async move {
        let current = work.locked_role()?.clone();
        match roles::holders(work.tx(), work.workspace_id(), &current.role.name).await? {
            (false, false) => {}
            (by_user, _) => {
                let holder = if by_user {
                    "a user"
                } else {
                    "a pending invitation"
                };
                return Err(Error::precondition(
                    Reason::RoleInUse,
                    format!(
                        "role {} is still held by {holder}; give them another role first",
                        current.role.name
                    ),
                ));
            }
        }
        roles::delete(work.tx(), work.workspace_id(), &current.role.name).await?;
        let changes = vec![
            FieldChange::new("name", &current.role.name, ""),
            FieldChange::new("permissions", current.role.permissions, ""),
        ];
        let recorded = write_record(&work, Action::RoleDeleted, &current, changes).await?;
        tracing::info!(role = %current.role.name, "deleting the role");
        work.finish(Outcome::Changed(current, recorded)).await
    })
    .await?;
    state.callers.sync(&state.pool).await;
    Ok(deleted)
}

/// The activity entry and the `role.*` event of a change.
async fn write_record(
    work: &Work<'_>,
    action: Action,
    role: &CustomRole,
    changes: Vec<FieldChange>,
) -> Result<Recorded, Error> {
    let event = events::role_changed(action, role, work.caller.user_id, &changes, work.request_id);
    work.record(action, Target::Workspace, changes, event)
}

/// The built-in roles, then the workspace's custom roles by name. Whoever
/// assigns roles (invites, manages users) or manages them may list them.
/// A page of the roles (AIP-158): built-in first, then custom by name; the
/// token names the last role shown, so a role made or deleted between two
/// pages neither repeats nor hides another.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    page: PageRequest,
) -> Result<Page<ListedRole>, Error> {
    let may_list = [
        Permission::RolesManage,
        Permission::UsersInvite,
        Permission::UsersManage,
    ]
    .into_iter()
    .any(|p| caller.role.permissions.contains(p));
    if !may_list {
        caller.require(Permission::RolesManage)?;
    }
    let client = state.connection().await?;
    let custom = roles::list(&client, caller.workspace_id).await?;
    let all = BUILT_IN
        .into_iter()
        .filter_map(Role::builtin)
        .map(ListedRole::BuiltIn)
        .chain(custom.into_iter().map(ListedRole::Custom));
    page_by_name(
        state,
        "roles",
        all,
        page,
        |role| role.name().to_owned(),
        listing_order,
    )
    .await
}

/// The permission catalog, in its order, a page at a time.
pub async fn list_permissions(
    state: &AppState,
    page: PageRequest,
) -> Result<Page<Permission>, Error> {
    page_by_name(
        state,
        "permissions",
        Permission::ALL.into_iter(),
        page,
        |p| p.as_str().to_owned(),
        |name| {
            Permission::ALL
                .iter()
                .position(|p| p.as_str() == name)
                .unwrap_or(usize::MAX)
        },
    )
    .await
}

/// A page of `all` (in the order `order` gives their names) after the item
/// a token names: the token holds the last item's name (MAC'd), so an item
/// added or removed between two pages neither repeats nor hides another.
async fn page_by_name<T, K: Ord>(
    state: &AppState,
    listing: &str,
    all: impl Iterator<Item = T>,
    page: PageRequest,
    name: impl Fn(&T) -> String,
    order: impl Fn(&str) -> K,
) -> Result<Page<T>, Error> {
    let filters = filter_digest(listing);
    let key = state.page_key().await?;
    let after = decode_name_page_token(key, &page.token, filters)?;
    let all: Vec<T> = all.collect();
    let total_size = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let size = usize::try_from(page.size).unwrap_or(usize::MAX);
    let mut items: Vec<T> = all
        .into_iter()
        .filter(|item| {
            after
                .as_deref()
                .is_none_or(|last| order(&name(item)) > order(last))
        })
        .take(size.saturating_add(1))
        .collect();
    let next_page_token = if items.len() > size {
        items.truncate(size);
        items
            .last()
            .map(|last| encode_name_page_token(key, &name(last), filters))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(Page {
        items,
        next_page_token,
        total_size,
    })
}

/// Whether the user may use `permission` now: active, and their role grants
/// it. Answered from the replica's caller cache when it can (see
/// `auth::cache`), else by one indexed query (`roles::standing`).
pub async fn check_permission(
    state: &AppState,
    caller: &Caller,
    user_id: Uuid,
    permission: Permission,
) -> Result<PermissionCheck, Error> {
    caller.require(Permission::UsersRead)?;
    let subject = state
        .callers
        .standing(&state.pool, caller.workspace_id, user_id)
        .await?
        .ok_or_else(Error::user_not_found)?;
    Ok(PermissionCheck {
        allowed: subject.is_active_at(time::OffsetDateTime::now_utc())
            && subject.role.permissions.contains(permission),
        role: subject.role.name.clone(),
    })
}
