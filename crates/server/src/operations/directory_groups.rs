//! A directory's groups (SCIM Groups). A group named as a role gives its
//! members that role: joining such a group sets the member's role, leaving
//! the last one sets the workspace's default directory role, each under the
//! rules of a role change (no role above the token's owner, the last
//! active owner stays), with its own `user.role_changed` entry and event.
//! Groups named as no role only hold their members.

use std::collections::HashSet;

use uuid::Uuid;

use super::{
    AppState,
    rules::ensure_other_owner,
    unit_of_work::{self, FirstLock, Mutation, Outcome, Target, Work},
};
use crate::{
    auth::Caller,
    domain::{
        Error, Reason,
        activity::{Action, FieldChange},
        permission::{Permission, Role},
    },
    events,
    store::{
        GenericClient, Lock,
        directory::get_member,
        directory_groups::{self as groups, Group},
        roles, users,
    },
};

/// What a directory writes of a group, checked.
#[derive(Debug, Clone)]
pub struct GroupFields {
    pub display_name: String,
    pub external_id: Option<String>,
    /// Without repeats, in the order given.
    pub members: Vec<Uuid>,
}

fn group_not_found() -> Error {
    Error::not_found(Reason::DirectoryGroupNotFound, "group not found")
}

fn taken(key: &str) -> Error {
    Error::AlreadyExists {
        reason: Reason::DirectoryGroupExists,
        message: format!("another group has this {key}"),
    }
}

fn mutation<'a>(operation: &'static str, request_id: &'a str) -> Mutation<'a> {
    Mutation::new(operation, Permission::ScimManage, request_id)
        // Role changes span users: the last-owner rule reads other rows.
        .locking(FirstLock::Workspace)
}

/// The role a group of this name gives, if any: the role of that name,
/// ignoring case.
async fn role_given_by(
    client: &impl GenericClient,
    workspace_id: Uuid,
    display_name: &str,
    lock: Lock,
) -> Result<Option<Role>, Error> {
    roles::resolve(client, workspace_id, &display_name.to_lowercase(), lock).await
}

/// As [`role_given_by`], in a unit of work: share-locked, so a custom role
/// cannot change under the request.
async fn role_of(work: &Work<'_>, display_name: &str) -> Result<Option<Role>, Error> {
    role_given_by(work.tx(), work.workspace_id(), display_name, Lock::Share).await
}

/// A group and the name of the role it gives, if any.
pub type GroupAndRole = (Group, Option<String>);

pub async fn get(state: &AppState, caller: &Caller, id: Uuid) -> Result<GroupAndRole, Error> {
    caller.require(Permission::ScimManage)?;
    let client = state.connection().await?;
    let group = groups::get(&client, caller.workspace_id, id, Lock::None)
        .await?
        .ok_or_else(group_not_found)?;
    with_role(&client, group).await
}

/// The group with the name of the role it gives, if any.
async fn with_role(client: &impl GenericClient, group: Group) -> Result<GroupAndRole, Error> {
    let role = role_given_by(client, group.workspace_id, &group.display_name, Lock::None)
        .await?
        .map(|role| role.name);
    Ok((group, role))
}

pub async fn list(
    state: &AppState,
    caller: &Caller,
    display_name: Option<&str>,
    external_id: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<GroupAndRole>, i64), Error> {
    caller.require(Permission::ScimManage)?;
    let client = state.connection().await?;
    let (found, total) = groups::list(
        &client,
        caller.workspace_id,
        display_name,
        external_id,
        offset,
        limit,
    )
    .await?;
    let mut out = Vec::with_capacity(found.len());
    for group in found {
        out.push(with_role(&client, group).await?);
    }
    Ok((out, total))
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    fields: GroupFields,
) -> Result<GroupAndRole, Error> {
    let fields = &fields;
    let created = unit_of_work::run(
        state,
        caller,
        mutation("CreateDirectoryGroup", request_id),
        |work| async move {
            let workspace_id = work.workspace_id();
            let group = groups::insert(
                work.tx(),
                workspace_id,
                Uuid::now_v7(),
                &fields.display_name,
                fields.external_id.as_deref(),
            )
            .await?
            .map_err(taken)?;
            let role = role_of(&work, &group.display_name).await?.map(|r| r.name);
            for (i, member) in fields.members.iter().enumerate() {
                ensure_member(&work, *member, i).await?;
                groups::set_member(work.tx(), workspace_id, group.id, *member, true).await?;
            }
            if role.is_some() {
                for member in &fields.members {
                    settle_role(&work, *member, request_id).await?;
                }
            }
            let group = reread(&work, group.id).await?;
            let changes = vec![FieldChange::new("display_name", "", &group.display_name)];
            let recorded = record(
                &work,
                Action::DirectoryGroupCreated,
                &group,
                changes,
                request_id,
            )?;
            tracing::info!(group_id = %group.id, "the directory created a group");
            work.finish(Outcome::Changed((group, role), recorded)).await
        },
    )
    .await?;
    state.callers.sync(&state.pool).await;
    Ok(created)
}

pub async fn replace(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    id: Uuid,
    fields: GroupFields,
    expected_version: Option<i64>,
) -> Result<GroupAndRole, Error> {
    let fields = &fields;
    let replaced = unit_of_work::run(
        state,
        caller,
        mutation("ReplaceDirectoryGroup", request_id),
        |work| async move {
            let workspace_id = work.workspace_id();
            let current = groups::get(work.tx(), workspace_id, id, Lock::Update)
                .await?
                .ok_or_else(group_not_found)?;
            Error::unless_current(expected_version, current.version, "group")?;
            let mut changes = Vec::new();
            let renamed = fields.display_name != current.display_name;
            if renamed {
                changes.push(FieldChange::new(
                    "display_name",
                    &current.display_name,
                    &fields.display_name,
                ));
            }
            if fields.external_id != current.external_id {
                changes.push(FieldChange::new(
                    "external_id",
                    current.external_id.as_deref().unwrap_or_default(),
                    fields.external_id.as_deref().unwrap_or_default(),
                ));
            }
            let role_before = role_of(&work, &current.display_name).await?.map(|r| r.name);
            if !changes.is_empty() {
                let next = Group {
                    display_name: fields.display_name.clone(),
                    external_id: fields.external_id.clone(),
                    ..current.clone()
                };
                groups::update(work.tx(), &next).await?.map_err(taken)?;
            }
            let role_after = role_of(&work, &fields.display_name).await?.map(|r| r.name);
            let before: HashSet<Uuid> = current.members.iter().copied().collect();
            let after: HashSet<Uuid> = fields.members.iter().copied().collect();
            let added: Vec<Uuid> = fields
                .members
                .iter()
                .copied()
                .filter(|m| !before.contains(m))
                .collect();
            let removed: Vec<Uuid> = current
                .members
                .iter()
                .copied()
                .filter(|m| !after.contains(m))
                .collect();
            for (i, member) in fields.members.iter().enumerate() {
                if added.contains(member) {
                    ensure_member(&work, *member, i).await?;
                    groups::set_member(work.tx(), workspace_id, id, *member, true).await?;
                }
            }
            for member in &removed {
                groups::set_member(work.tx(), workspace_id, id, *member, false).await?;
            }
            if !added.is_empty() || !removed.is_empty() {
                changes.push(FieldChange::new("members", before.len(), after.len()));
                if changes.len() == 1 {
                    groups::touch(work.tx(), workspace_id, id).await?;
                }
            }
            if changes.is_empty() {
                return work
                    .finish(Outcome::Unchanged((current, role_before)))
                    .await;
            }
            // Whose role may change: everyone in it before or after when the
            // role it gives changed, else those who joined or left a group that
            // gives one.
            let settle: Vec<Uuid> = if role_before != role_after {
                current.members.iter().chain(&added).copied().collect()
            } else if role_after.is_some() {
                added.iter().chain(&removed).copied().collect()
            } else {
                Vec::new()
            };
            for member in settle {
                settle_role(&work, member, request_id).await?;
            }
            let group = reread(&work, id).await?;
            let recorded = record(
                &work,
                Action::DirectoryGroupUpdated,
                &group,
                changes,
                request_id,
            )?;
            work.finish(Outcome::Changed((group, role_after), recorded))
                .await
        },
    )
    .await?;
    state.callers.sync(&state.pool).await;
    Ok(replaced)
}

pub async fn delete(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    id: Uuid,
) -> Result<(), Error> {
    unit_of_work::run(
        state,
        caller,
        mutation("DeleteDirectoryGroup", request_id),
        |work| async move {
            let workspace_id = work.workspace_id();
            let group = groups::get(work.tx(), workspace_id, id, Lock::Update)
                .await?
                .ok_or_else(group_not_found)?;
            let gave_role = role_of(&work, &group.display_name).await?.is_some();
            groups::delete(work.tx(), workspace_id, id).await?;
            if gave_role {
                for member in &group.members {
                    settle_role(&work, *member, request_id).await?;
                }
            }
            let changes = vec![FieldChange::new("display_name", &group.display_name, "")];
            let recorded = record(
                &work,
                Action::DirectoryGroupDeleted,
                &group,
                changes,
                request_id,
            )?;
            work.finish(Outcome::Changed((), recorded)).await
        },
    )
    .await?;
    state.callers.sync(&state.pool).await;
    Ok(())
}

/// Refuses a member the workspace does not have (or a directory let go of).
async fn ensure_member(work: &Work<'_>, user_id: Uuid, index: usize) -> Result<(), Error> {
    match get_member(work.tx(), work.workspace_id(), user_id, false, Lock::None).await? {
        Some(_) => Ok(()),
        None => Err(Error::invalid_with(
            Reason::UserNotFound,
            &format!("fields.member_user_ids[{index}]"),
            "no such member in this workspace",
        )),
    }
}

async fn reread(work: &Work<'_>, id: Uuid) -> Result<Group, Error> {
    groups::get(work.tx(), work.workspace_id(), id, Lock::None)
        .await?
        .ok_or_else(group_not_found)
}

fn record(
    work: &Work<'_>,
    action: Action,
    group: &Group,
    changes: Vec<FieldChange>,
    request_id: &str,
) -> Result<super::unit_of_work::Recorded, Error> {
    let event = events::directory_group_changed(action, group, &work.caller, &changes, request_id);
    work.record(action, Target::Workspace, changes, event)
}

/// Sets the member's role from the groups it is in: the role of its group
/// named as the role with the most permissions; in no such group, the
/// workspace's default directory role.
async fn settle_role(work: &Work<'_>, user_id: Uuid, request_id: &str) -> Result<(), Error> {
    let workspace_id = work.workspace_id();
    let (user, current_role) = work.user(user_id).await?;
    let mut best: Option<Role> = None;
    for name in groups::names_of_groups_of(work.tx(), workspace_id, user_id).await? {
        if let Some(role) = role_of(work, &name).await? {
            let better = best.as_ref().is_none_or(|b| {
                let (mine, theirs) = (
                    role.permissions.iter().count(),
                    b.permissions.iter().count(),
                );
                mine > theirs || (mine == theirs && role.name < b.name)
            });
            if better {
                best = Some(role);
            }
        }
    }
    let target = match best {
        Some(role) => role,
        None => {
            let name = work.settings().await?.directory_default_role;
            work.grantable_role("default_role", &name).await?
        }
    };
    if target.name == user.role {
        return Ok(());
    }
    work.require_not_below(&target)?;
    if current_role.is_owner() && !target.is_owner() {
        ensure_other_owner(work.tx(), &user).await?;
    }
    let mut next = user.clone();
    next.role = target.name.clone();
    let updated = users::update(work.tx(), &next).await?;
    let changes = vec![FieldChange::new("role", &user.role, &target.name)];
    let event = events::user_changed(
        Action::UserRoleChanged,
        &updated,
        &work.caller,
        &changes,
        request_id,
    );
    work.record(
        Action::UserRoleChanged,
        Target::User(user_id),
        changes,
        event,
    )?;
    Ok(())
}
