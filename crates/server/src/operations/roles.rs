//! The permission catalog, the workspace's custom roles (create, update,
//! delete, list) and permission checks for other services.
//!
//! Built-in roles live in code and never change; custom roles live in
//! Postgres, one row per (workspace, name). Nobody creates, changes or
//! deletes a role holding a permission they lack.

use uuid::Uuid;

use super::{AppState, Record, record, remember, replayed};
use crate::{
    auth::{Caller, caller::confirm},
    domain::{
        Error, Reason,
        activity::{Action, FieldChange},
        permission::{
            BUILT_IN, CustomRole, NewRole, Permission, PermissionSet, Role, RoleDeletion,
            RoleUpdate,
        },
    },
    events,
    store::{
        Transaction,
        roles::{self, Lock},
    },
};

/// Every role usable in a workspace.
pub struct Roles {
    pub built_in: Vec<Role>,
    pub custom: Vec<CustomRole>,
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

fn role_not_found(name: &str) -> Error {
    Error::not_found(
        Reason::RoleNotFound,
        format!("no custom role named {name:?}"),
    )
}

fn built_in(name: &str) -> Error {
    Error::precondition(
        Reason::RoleBuiltIn,
        format!("{name} is a built-in role: it cannot be changed or deleted"),
    )
}

/// Refuses a caller lacking one of `permissions`.
fn require_holds(caller: &Caller, name: &str, permissions: PermissionSet) -> Result<(), Error> {
    caller.require_not_below(&Role {
        name: name.to_owned(),
        permissions,
    })
}

/// Reads the custom role to change or delete, locked until the transaction
/// ends. Taken before `confirm`, so a caller holding the role locks it once.
async fn role_to_change(
    tx: &Transaction<'_>,
    caller: &Caller,
    name: &str,
) -> Result<CustomRole, Error> {
    if Role::builtin(name).is_some() {
        return Err(built_in(name));
    }
    roles::get(tx, caller.workspace_id, name, Lock::Update)
        .await?
        .ok_or_else(|| role_not_found(name))
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    new: NewRole,
) -> Result<CustomRole, Error> {
    caller.require(Permission::RolesManage)?;
    if Role::builtin(&new.name).is_some() {
        return Err(role_exists(&new.name));
    }
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let key = new.idempotency.as_ref();
    if let Some(first) = replayed(&tx, caller, "CreateRole", key).await? {
        return Ok(first);
    }
    // The caller's role as of now, not as of authentication.
    let caller = &confirm(&tx, caller).await?;
    caller.require(Permission::RolesManage)?;
    require_holds(caller, &new.name, new.permissions)?;
    let role = Role {
        name: new.name,
        permissions: new.permissions,
    };
    let created = roles::insert(&tx, caller.workspace_id, &role)
        .await?
        .ok_or_else(|| role_exists(&role.name))?;
    let changes = vec![
        FieldChange::new("name", "", &created.role.name),
        FieldChange::new("permissions", "", created.role.permissions),
    ];
    write_record(
        &tx,
        caller,
        Action::RoleCreated,
        &created,
        changes,
        request_id,
    )
    .await?;
    remember(&tx, caller, "CreateRole", key, &created).await?;
    tx.commit().await?;
    tracing::info!(role = %created.role.name, "role created");
    Ok(created)
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    update: RoleUpdate,
) -> Result<CustomRole, Error> {
    caller.require(Permission::RolesManage)?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let key = update.idempotency.as_ref();
    if let Some(first) = replayed(&tx, caller, "UpdateRole", key).await? {
        return Ok(first);
    }
    let current = role_to_change(&tx, caller, &update.name).await?;
    let caller = &confirm(&tx, caller).await?;
    caller.require(Permission::RolesManage)?;
    if let Some(expected) = update.expected_version
        && expected != current.version
    {
        return Err(Error::Aborted {
            reason: Reason::EtagMismatch,
            message: "the role changed since it was read; read it again".into(),
        });
    }
    // Neither the role as it is nor as it becomes may be above the caller.
    caller.require_not_below(&current.role)?;
    require_holds(caller, &update.name, update.permissions)?;
    if update.permissions == current.role.permissions {
        remember(&tx, caller, "UpdateRole", key, &current).await?;
        tx.commit().await?;
        return Ok(current);
    }
    let next = Role {
        name: current.role.name.clone(),
        permissions: update.permissions,
    };
    let updated = roles::update(&tx, caller.workspace_id, &next).await?;
    let changes = vec![FieldChange::new(
        "permissions",
        current.role.permissions,
        updated.role.permissions,
    )];
    write_record(
        &tx,
        caller,
        Action::RoleUpdated,
        &updated,
        changes,
        request_id,
    )
    .await?;
    remember(&tx, caller, "UpdateRole", key, &updated).await?;
    tx.commit().await?;
    tracing::info!(role = %updated.role.name, "role updated");
    Ok(updated)
}

pub async fn delete(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    deletion: RoleDeletion,
) -> Result<CustomRole, Error> {
    caller.require(Permission::RolesManage)?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let key = deletion.idempotency.as_ref();
    if let Some(first) = replayed(&tx, caller, "DeleteRole", key).await? {
        return Ok(first);
    }
    // Locked first: an assignment of the role (which share-locks it) either
    // committed before, and is seen below, or waits and then finds no role.
    let current = role_to_change(&tx, caller, &deletion.name).await?;
    let caller = &confirm(&tx, caller).await?;
    caller.require(Permission::RolesManage)?;
    caller.require_not_below(&current.role)?;
    match roles::holders(&tx, caller.workspace_id, &current.role.name).await? {
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
    roles::delete(&tx, caller.workspace_id, &current.role.name).await?;
    let changes = vec![
        FieldChange::new("name", &current.role.name, ""),
        FieldChange::new("permissions", current.role.permissions, ""),
    ];
    write_record(
        &tx,
        caller,
        Action::RoleDeleted,
        &current,
        changes,
        request_id,
    )
    .await?;
    remember(&tx, caller, "DeleteRole", key, &current).await?;
    tx.commit().await?;
    tracing::info!(role = %current.role.name, "role deleted");
    Ok(current)
}

/// The activity entry and the `role.*` event of a change.
async fn write_record(
    tx: &Transaction<'_>,
    caller: &Caller,
    action: Action,
    role: &CustomRole,
    changes: Vec<FieldChange>,
    request_id: &str,
) -> Result<(), Error> {
    let event = events::role_changed(action, role, caller.user_id, &changes, request_id);
    record(
        tx,
        Record {
            workspace_id: caller.workspace_id,
            actor_id: Some(caller.user_id),
            action,
            target_user_id: None,
            target_invitation_id: None,
            changes,
            request_id,
        },
        event,
    )
    .await
}

/// The built-in roles, then the workspace's custom roles by name. Whoever
/// assigns roles (invites, manages users) or manages them may list them.
pub async fn list(state: &AppState, caller: &Caller) -> Result<Roles, Error> {
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
    let client = state.pool.get().await?;
    let custom = roles::list(&client, caller.workspace_id).await?;
    Ok(Roles {
        built_in: BUILT_IN.into_iter().filter_map(Role::builtin).collect(),
        custom,
    })
}

/// Whether the user may use `permission` now: active, and their role grants
/// it. One indexed query (see `roles::permission_facts`) on top of the
/// caller's authentication; built-in roles resolve in code.
pub async fn check_permission(
    state: &AppState,
    caller: &Caller,
    user_id: Uuid,
    permission: Permission,
) -> Result<PermissionCheck, Error> {
    caller.require(Permission::UsersRead)?;
    let client = state.pool.get().await?;
    let facts = roles::permission_facts(&client, caller.workspace_id, user_id)
        .await?
        .ok_or_else(Error::user_not_found)?;
    let permissions = Role::builtin(&facts.role)
        .map(|role| role.permissions)
        .or(facts.custom_permissions)
        .unwrap_or_default();
    Ok(PermissionCheck {
        allowed: facts.active && permissions.contains(permission),
        role: facts.role,
    })
}
