//! The gRPC `RoleService`: the permission catalog, custom roles and
//! permission checks. Thin handlers: authenticate, parse the request into
//! domain values, call `operations::roles`, convert the result.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use wowchat_users_api::v1::{self as proto, role_service_server::RoleService};

use super::{convert, request_id};
use crate::wire;
use crate::{
    auth::Caller,
    domain::{
        Error, Reason,
        error::Violations,
        idempotency::IdempotencyKey,
        permission::{
            CustomRole, NewRole, Permission, PermissionSet, RoleDeletion, RoleUpdate,
            parse_role_name,
        },
    },
    operations::{self, AppState},
};

pub struct RoleServiceImpl {
    state: Arc<AppState>,
}

impl RoleServiceImpl {
    pub fn new(state: Arc<AppState>) -> Self {
        RoleServiceImpl { state }
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Error> {
        super::authenticated(&self.state, request).await
    }
}

// ---- wire to domain ----

/// More entries than the catalog could ever hold is refused whole.
const MAX_PERMISSION_ENTRIES: usize = 100;

/// Catalog names to a set; each unknown or repeated name is a violation of
/// `permissions[i]`.
fn permission_set(v: &mut Violations, names: &[String]) -> PermissionSet {
    if names.len() > MAX_PERMISSION_ENTRIES {
        v.push(
            "permissions",
            format!("must hold at most {MAX_PERMISSION_ENTRIES} entries"),
        );
        return PermissionSet::default();
    }
    let mut found = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        match Permission::parse(name) {
            Some(p) if found.contains(&p) => v.push(
                &format!("permissions[{i}]"),
                format!("{name:?} is repeated"),
            ),
            Some(p) => found.push(p),
            None => v.push(
                &format!("permissions[{i}]"),
                format!("{name:?} is not a permission of the catalog (see ListPermissions)"),
            ),
        }
    }
    PermissionSet::of(&found)
}

fn request_key(v: &mut Violations, request_id: &str, fingerprint: &[u8]) -> Option<IdempotencyKey> {
    v.check("request_id", IdempotencyKey::parse(request_id, fingerprint))
        .flatten()
}

impl TryFrom<proto::CreateRoleRequest> for NewRole {
    type Error = Error;

    fn try_from(request: proto::CreateRoleRequest) -> Result<Self, Error> {
        let fingerprint = convert::fingerprint_of(&request, |r| r.request_id.clear());
        let proto::CreateRoleRequest {
            name,
            permissions,
            request_id,
        } = request;
        let mut v = Violations::default();
        let name = v.check("name", parse_role_name(&name));
        let permissions = permission_set(&mut v, &permissions);
        let idempotency = request_key(&mut v, &request_id, &fingerprint);
        v.finish()?;
        let name = name.ok_or_else(|| Error::invalid("name", "is invalid"))?;
        Ok(NewRole {
            name,
            permissions,
            idempotency,
        })
    }
}

impl TryFrom<proto::UpdateRoleRequest> for RoleUpdate {
    type Error = Error;

    fn try_from(request: proto::UpdateRoleRequest) -> Result<Self, Error> {
        let fingerprint = convert::fingerprint_of(&request, |r| r.request_id.clear());
        let proto::UpdateRoleRequest {
            name,
            permissions,
            etag,
            request_id,
        } = request;
        let mut v = Violations::default();
        let name = v.check("name", parse_role_name(&name));
        let permissions = permission_set(&mut v, &permissions);
        let expected_version = if etag.is_empty() {
            None
        } else {
            v.check(
                "etag",
                CustomRole::version_of_etag(&etag)
                    .ok_or_else(|| "is not an etag of this service".to_string()),
            )
        };
        let idempotency = request_key(&mut v, &request_id, &fingerprint);
        v.finish()?;
        let name = name.ok_or_else(|| Error::invalid("name", "is invalid"))?;
        Ok(RoleUpdate {
            name,
            permissions,
            expected_version,
            idempotency,
        })
    }
}

impl TryFrom<proto::DeleteRoleRequest> for RoleDeletion {
    type Error = Error;

    fn try_from(request: proto::DeleteRoleRequest) -> Result<Self, Error> {
        let fingerprint = convert::fingerprint_of(&request, |r| r.request_id.clear());
        let proto::DeleteRoleRequest { name, request_id } = request;
        let mut v = Violations::default();
        let name = v.check("name", parse_role_name(&name));
        let idempotency = request_key(&mut v, &request_id, &fingerprint);
        v.finish()?;
        let name = name.ok_or_else(|| Error::invalid("name", "is invalid"))?;
        Ok(RoleDeletion { name, idempotency })
    }
}

pub(crate) fn permission_field(name: &str) -> Result<Permission, Error> {
    Permission::parse(name).ok_or_else(|| {
        Error::invalid_with(
            Reason::PermissionNotFound,
            "permission",
            format!("{name:?} is not a permission of the catalog (see ListPermissions)"),
        )
    })
}

// ---- handlers ----

#[tonic::async_trait]
impl RoleService for RoleServiceImpl {
    async fn list_permissions(
        &self,
        request: Request<proto::ListPermissionsRequest>,
    ) -> Result<Response<proto::ListPermissionsResponse>, Status> {
        self.caller(&request).await?;
        let proto::ListPermissionsRequest {
            page_size,
            page_token,
        } = request.into_inner();
        let page = convert::list_page(page_size, page_token)?;
        let page = operations::roles::list_permissions(&self.state, page).await?;
        let (permissions, next_page_token, total_size) =
            convert::listed(page, |p| proto::Permission {
                name: p.as_str().to_owned(),
                description: p.description().to_owned(),
            });
        Ok(Response::new(proto::ListPermissionsResponse {
            permissions,
            catalog_version: i32::try_from(Permission::CATALOG_VERSION).unwrap_or(i32::MAX),
            next_page_token,
            total_size,
        }))
    }

    async fn list_roles(
        &self,
        request: Request<proto::ListRolesRequest>,
    ) -> Result<Response<proto::ListRolesResponse>, Status> {
        let caller = self.caller(&request).await?;
        let proto::ListRolesRequest {
            page_size,
            page_token,
        } = request.into_inner();
        let page = convert::list_page(page_size, page_token)?;
        let page = operations::roles::list(&self.state, &caller, page).await?;
        let (roles, next_page_token, total_size) = convert::listed(page, |role| match role {
            operations::roles::ListedRole::BuiltIn(role) => wire::built_in_role(role),
            operations::roles::ListedRole::Custom(custom) => wire::custom_role(custom),
        });
        Ok(Response::new(proto::ListRolesResponse {
            roles,
            next_page_token,
            total_size,
        }))
    }

    async fn create_role(
        &self,
        request: Request<proto::CreateRoleRequest>,
    ) -> Result<Response<proto::CreateRoleResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.caller(&request).await?;
        // Before the input is read: a caller who may not manage roles
        // learns nothing from it, however large.
        caller.require(Permission::RolesManage)?;
        let new = NewRole::try_from(request.into_inner())?;
        let role = operations::roles::create(&self.state, &caller, &request_id, new).await?;
        Ok(Response::new(proto::CreateRoleResponse {
            role: Some(wire::custom_role(&role)),
        }))
    }

    async fn update_role(
        &self,
        request: Request<proto::UpdateRoleRequest>,
    ) -> Result<Response<proto::UpdateRoleResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.caller(&request).await?;
        // Before the input is read: a caller who may not manage roles
        // learns nothing from it, however large.
        caller.require(Permission::RolesManage)?;
        let update = RoleUpdate::try_from(request.into_inner())?;
        let role = operations::roles::update(&self.state, &caller, &request_id, update).await?;
        Ok(Response::new(proto::UpdateRoleResponse {
            role: Some(wire::custom_role(&role)),
        }))
    }

    async fn delete_role(
        &self,
        request: Request<proto::DeleteRoleRequest>,
    ) -> Result<Response<proto::DeleteRoleResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.caller(&request).await?;
        // Before the input is read: a caller who may not manage roles
        // learns nothing from it, however large.
        caller.require(Permission::RolesManage)?;
        let deletion = RoleDeletion::try_from(request.into_inner())?;
        let role = operations::roles::delete(&self.state, &caller, &request_id, deletion).await?;
        Ok(Response::new(proto::DeleteRoleResponse {
            role: Some(wire::custom_role(&role)),
        }))
    }

    async fn check_permission(
        &self,
        request: Request<proto::CheckPermissionRequest>,
    ) -> Result<Response<proto::CheckPermissionResponse>, Status> {
        let caller = self.caller(&request).await?;
        let proto::CheckPermissionRequest {
            user_id,
            permission,
        } = request.into_inner();
        let user_id = convert::id_field("user_id", &user_id)?;
        let permission = permission_field(&permission)?;
        let check =
            operations::roles::check_permission(&self.state, &caller, user_id, permission).await?;
        Ok(Response::new(proto::CheckPermissionResponse {
            allowed: check.allowed,
            role: check.role,
        }))
    }
}
