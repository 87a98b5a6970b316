//! The permission catalog and the built-in roles, each a set of permissions
//! from that one catalog. "Above" means "holds a permission the other lacks":
//! nobody grants, or acts on, a role above their own. Custom roles are
//! workspace-defined sets from the same catalog.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::idempotency::IdempotencyKey;

named_enum! {
    /// One entry of the fixed, versioned permission catalog.
    #[derive(Hash)]
    #[repr(u8)]
    pub enum Permission {
        UsersRead = "users.read",
        UsersInvite = "users.invite",
        UsersManage = "users.manage",
        RolesManage = "roles.manage",
        ActivityRead = "activity.read",
        WorkspaceManage = "workspace.manage",
        ConversationsRead = "conversations.read",
        ConversationsReply = "conversations.reply",
        ConversationsAssign = "conversations.assign",
        ConversationsManage = "conversations.manage",
        ContactsRead = "contacts.read",
        ContactsManage = "contacts.manage",
        ReportsRead = "reports.read",
        KnowledgeBaseRead = "knowledge_base.read",
        KnowledgeBaseManage = "knowledge_base.manage",
        ScimManage = "scim.manage",
    }
}

impl Permission {
    /// Bumped whenever the catalog changes.
    pub const CATALOG_VERSION: u32 = 2;

    pub fn description(self) -> &'static str {
        match self {
            Permission::UsersRead => "See the workspace's users",
            Permission::UsersInvite => "Invite people and manage invitations",
            Permission::UsersManage => "Change users' profile, role, manager and activation",
            Permission::RolesManage => "Create and change custom roles",
            Permission::ActivityRead => "Read the activity log",
            Permission::WorkspaceManage => "Change workspace settings and billing",
            Permission::ConversationsRead => "Read customer conversations",
            Permission::ConversationsReply => "Reply in customer conversations",
            Permission::ConversationsAssign => "Assign conversations to agents and teams",
            Permission::ConversationsManage => "Close, delete and export conversations",
            Permission::ContactsRead => "See customer contacts",
            Permission::ContactsManage => "Create, edit and delete customer contacts",
            Permission::ReportsRead => "See reports",
            Permission::KnowledgeBaseRead => "Read the knowledge base",
            Permission::KnowledgeBaseManage => "Write and publish knowledge-base articles",
            Permission::ScimManage => "Connect a directory (SCIM): mint and revoke its tokens",
        }
    }

    fn bit(self) -> u64 {
        1 << (self as u8)
    }
}

/// A set of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PermissionSet(u64);

impl PermissionSet {
    pub fn of(permissions: &[Permission]) -> Self {
        PermissionSet(permissions.iter().fold(0, |bits, p| bits | p.bit()))
    }

    pub fn all() -> Self {
        Self::of(&Permission::ALL)
    }

    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    /// True when every permission of `self` is also in `other`.
    pub fn is_subset_of(self, other: PermissionSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    /// The catalog names of the set, in catalog order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Permission::as_str).collect()
    }

    /// The set named by stored catalog names; a name the catalog no longer
    /// has grants nothing.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Self {
        Self::of(
            &names
                .iter()
                .filter_map(|n| Permission::parse(n.as_ref()))
                .collect::<Vec<_>>(),
        )
    }
}

impl std::fmt::Display for PermissionSet {
    /// Comma-separated catalog names, for the activity log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

/// A role: a name and the permissions it grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub permissions: PermissionSet,
}

pub const OWNER: &str = "owner";
pub const ADMIN: &str = "admin";
pub const SUPERVISOR: &str = "supervisor";
pub const AGENT: &str = "agent";

/// The built-in roles, most powerful first.
pub const BUILT_IN: [&str; 4] = [OWNER, ADMIN, SUPERVISOR, AGENT];

impl Role {
    /// The built-in role of that name, if there is one.
    pub fn builtin(name: &str) -> Option<Role> {
        use Permission::*;
        let permissions = match name {
            OWNER => PermissionSet::all(),
            ADMIN => PermissionSet::of(&[
                UsersRead,
                UsersInvite,
                UsersManage,
                RolesManage,
                ActivityRead,
                ConversationsRead,
                ConversationsReply,
                ConversationsAssign,
                ConversationsManage,
                ContactsRead,
                ContactsManage,
                ReportsRead,
                KnowledgeBaseRead,
                KnowledgeBaseManage,
            ]),
            SUPERVISOR => PermissionSet::of(&[
                UsersRead,
                ActivityRead,
                ConversationsRead,
                ConversationsReply,
                ConversationsAssign,
                ContactsRead,
                ContactsManage,
                ReportsRead,
                KnowledgeBaseRead,
            ]),
            AGENT => PermissionSet::of(&[
                ConversationsRead,
                ConversationsReply,
                ContactsRead,
                KnowledgeBaseRead,
            ]),
            _ => return None,
        };
        Some(Role {
            name: name.to_owned(),
            permissions,
        })
    }

    pub fn is_owner(&self) -> bool {
        self.name == OWNER
    }

    /// True when this role holds a permission `other` lacks.
    pub fn is_above(&self, other: &Role) -> bool {
        !self.permissions.is_subset_of(other.permissions)
    }
}

/// A workspace's own role, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomRole {
    pub workspace_id: Uuid,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub version: i64,
}

impl CustomRole {
    pub fn etag(&self) -> String {
        super::etag(self.version)
    }

    /// The version an etag names; `None` for a malformed etag.
    pub fn version_of_etag(etag: &str) -> Option<i64> {
        super::version_of_etag(etag)
    }
}

/// A parsed CreateRole request.
#[derive(Debug, Clone)]
pub struct NewRole {
    pub name: String,
    pub permissions: PermissionSet,
    pub idempotency: Option<IdempotencyKey>,
}

/// A parsed UpdateRole request: the role keeps its name, its permissions change.
#[derive(Debug, Clone)]
pub struct RoleUpdate {
    pub name: String,
    pub permissions: PermissionSet,
    pub expected_version: Option<i64>,
    pub idempotency: Option<IdempotencyKey>,
}

/// A parsed DeleteRole request.
#[derive(Debug, Clone)]
pub struct RoleDeletion {
    pub name: String,
    pub idempotency: Option<IdempotencyKey>,
}

/// Checks a role name's shape: 1 to 64 of `a-z`, `0-9`, `_`, `-`.
pub fn parse_role_name(input: &str) -> Result<String, String> {
    let name = input.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err("must be 1 to 64 of a-z, 0-9, '_' and '-'".into());
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_roles_are_ordered_owner_admin_supervisor_agent() {
        let [owner, admin, supervisor, agent] =
            [OWNER, ADMIN, SUPERVISOR, AGENT].map(|n| Role::builtin(n).expect("builtin"));
        assert!(owner.is_above(&admin));
        assert!(admin.is_above(&supervisor));
        assert!(supervisor.is_above(&agent));
        assert!(!admin.is_above(&owner));
        assert!(!agent.is_above(&agent));
        assert!(Role::builtin("root").is_none());
    }

    #[test]
    fn permission_sets_round_trip_through_names() {
        let set = PermissionSet::of(&[Permission::UsersRead, Permission::ReportsRead]);
        assert_eq!(set.names(), ["users.read", "reports.read"]);
        assert_eq!(PermissionSet::from_names(&set.names()), set);
        assert_eq!(
            PermissionSet::from_names(&["gone.permission"]),
            PermissionSet::default()
        );
        assert_eq!(set.to_string(), "users.read,reports.read");
    }

    #[test]
    fn catalog_names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        assert_eq!(PermissionSet::all().iter().count(), Permission::ALL.len());
    }
}
