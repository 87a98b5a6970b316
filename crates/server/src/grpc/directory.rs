//! `DirectoryService`: directory tokens (for owners) and provisioning (for
//! a directory holding one). The gateway serves it as SCIM 2.0.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;
use wowchat_users_api::v1::{self as proto, directory_service_server::DirectoryService};

use super::{authenticated, convert, request_id};
use crate::{
    auth::{Caller, caller::authenticate_directory},
    domain::{
        Error,
        directory::{
            Condition, DirectoryEmail, DirectoryFields, DirectoryProfile, FilterAttribute,
            FilterOperator, PersonName, UncheckedFields, directory_key,
        },
        error::Violations,
        permission::Permission,
        text,
        user::User,
    },
    operations::{self, AppState, directory_groups::GroupFields},
    wire,
};

/// Most members one ListDirectoryUsers page holds (SCIM `count`).
pub const MAX_PAGE: i32 = 200;
/// The page size when none is asked for.
pub const DEFAULT_PAGE: i32 = 100;
/// Most conditions one listing takes.
const MAX_CONDITIONS: usize = 10;

pub struct DirectoryServiceImpl {
    state: Arc<AppState>,
}

impl DirectoryServiceImpl {
    pub fn new(state: Arc<AppState>) -> Self {
        DirectoryServiceImpl { state }
    }

    async fn directory<T>(&self, request: &Request<T>) -> Result<Caller, Error> {
        let caller =
            authenticate_directory(&self.state.pool, &self.state.callers, request.metadata())
                .await?;
        self.state.directory.admit(&caller)?;
        Ok(caller)
    }
}

// ---- wire to domain ----

pub(super) fn fields(input: Option<proto::DirectoryUserFields>) -> Result<DirectoryFields, Error> {
    let proto::DirectoryUserFields {
        user_name,
        external_id,
        name,
        display_name,
        emails,
        active,
        manager_user_id,
        password,
    } = input.unwrap_or_default();
    let mut v = Violations::default();
    let manager_id = match manager_user_id.as_deref() {
        None | Some("") => None,
        Some(id) => v.check(
            "fields.manager_user_id",
            Uuid::parse_str(id).map_err(|_| "must be a UUID".to_string()),
        ),
    };
    let unchecked = UncheckedFields {
        user_name,
        external_id,
        profile: DirectoryProfile {
            name: name.map(|name| PersonName {
                given: name.given_name,
                family: name.family_name,
            }),
            display_name,
            emails: emails
                .into_iter()
                .map(|email| DirectoryEmail {
                    value: email.value,
                    kind: email.r#type,
                    primary: email.primary,
                })
                .collect(),
        },
        active,
        manager_id,
        password,
    };
    let parsed = DirectoryFields::parse(unchecked, &mut v, "fields");
    v.finish()?;
    parsed.ok_or_else(|| Error::invalid("fields", "is invalid"))
}

fn condition(input: proto::DirectoryCondition) -> Result<Condition, String> {
    use proto::{DirectoryAttribute as A, DirectoryOperator as O};
    let proto::DirectoryCondition {
        attribute,
        operator,
        value,
    } = input;
    let attribute = match A::try_from(attribute) {
        Ok(A::UserName) => FilterAttribute::UserName,
        Ok(A::ExternalId) => FilterAttribute::ExternalId,
        Ok(A::Email) => FilterAttribute::Email,
        Ok(A::DisplayName) => FilterAttribute::DisplayName,
        Ok(A::Active) => FilterAttribute::Active,
        _ => return Err("the attribute must be set".into()),
    };
    let operator = match O::try_from(operator) {
        Ok(O::Equal) => FilterOperator::Equal,
        Ok(O::NotEqual) => FilterOperator::NotEqual,
        Ok(O::Contains) => FilterOperator::Contains,
        Ok(O::StartsWith) => FilterOperator::StartsWith,
        Ok(O::EndsWith) => FilterOperator::EndsWith,
        Ok(O::Present) => FilterOperator::Present,
        _ => return Err("the operator must be set".into()),
    };
    if value.chars().count() > 256 {
        return Err("the value must be at most 256 characters".into());
    }
    if attribute == FilterAttribute::Active
        && operator != FilterOperator::Present
        && !(value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"))
    {
        return Err("active compares with \"true\" or \"false\"".into());
    }
    Ok(Condition {
        attribute,
        operator,
        value,
    })
}

/// A token's name as CreateDirectoryToken takes it.
pub(super) fn token_name(input: &str) -> Result<String, Error> {
    text::display_name(input).map_err(|description| Error::invalid("display_name", description))
}

/// A listing: its conditions, the 0-based offset and the page size.
pub(super) struct DirectoryListing {
    pub conditions: Vec<Condition>,
    pub offset: i64,
    pub count: i64,
}

pub(super) fn listing(
    request: proto::ListDirectoryUsersRequest,
) -> Result<DirectoryListing, Error> {
    let proto::ListDirectoryUsersRequest {
        conditions,
        start_index,
        count,
    } = request;
    let mut v = Violations::default();
    if conditions.len() > MAX_CONDITIONS {
        v.push("conditions", format!("must be at most {MAX_CONDITIONS}"));
    }
    let conditions: Vec<Condition> = conditions
        .into_iter()
        .take(MAX_CONDITIONS)
        .enumerate()
        .filter_map(|(i, c)| v.check(&format!("conditions[{i}]"), condition(c)))
        .collect();
    // RFC 7644 3.4.2.4: a negative count is 0; past the most a page holds,
    // a page holds the most (as AIP-158 does for page_size).
    let count = count.unwrap_or(DEFAULT_PAGE).clamp(0, MAX_PAGE);
    if start_index < 0 {
        v.push("start_index", "must not be negative");
    }
    v.finish()?;
    Ok(DirectoryListing {
        conditions,
        offset: i64::from(start_index.max(1)) - 1,
        count: i64::from(count),
    })
}

/// A member id as the directory's calls take it: one that is no UUID names
/// no member, NOT_FOUND as SCIM expects.
pub(super) fn member_id(input: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(input).map_err(|_| Error::user_not_found())
}

/// Most members one group holds.
const MAX_GROUP_MEMBERS: usize = 10_000;

pub(super) fn group_fields(
    input: Option<proto::DirectoryGroupFields>,
) -> Result<GroupFields, Error> {
    let proto::DirectoryGroupFields {
        display_name,
        external_id,
        member_user_ids,
    } = input.unwrap_or_default();
    let mut v = Violations::default();
    let display_name = v.check("fields.display_name", directory_key(&display_name));
    let external_id = match external_id {
        Some(id) => v.check("fields.external_id", directory_key(&id)).map(Some),
        None => Some(None),
    };
    if member_user_ids.len() > MAX_GROUP_MEMBERS {
        v.push(
            "fields.member_user_ids",
            format!("must be at most {MAX_GROUP_MEMBERS}"),
        );
    }
    let mut members = Vec::new();
    for (i, id) in member_user_ids.iter().take(MAX_GROUP_MEMBERS).enumerate() {
        if let Some(id) = v.check(
            &format!("fields.member_user_ids[{i}]"),
            Uuid::parse_str(id).map_err(|_| "must be a user id".to_string()),
        ) && !members.contains(&id)
        {
            members.push(id);
        }
    }
    v.finish()?;
    match (display_name, external_id) {
        (Some(display_name), Some(external_id)) => Ok(GroupFields {
            display_name,
            external_id,
            members,
        }),
        _ => Err(Error::invalid("fields", "is invalid")),
    }
}

/// A group id: one that is no UUID names no group.
pub(super) fn group_id(input: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(input).map_err(|_| {
        Error::not_found(
            crate::domain::Reason::DirectoryGroupNotFound,
            "group not found",
        )
    })
}

pub(super) struct GroupListing {
    pub display_name: Option<String>,
    pub external_id: Option<String>,
    pub offset: i64,
    pub count: i64,
}

pub(super) fn group_listing(
    request: proto::ListDirectoryGroupsRequest,
) -> Result<GroupListing, Error> {
    let proto::ListDirectoryGroupsRequest {
        display_name,
        external_id,
        start_index,
        count,
    } = request;
    let mut v = Violations::default();
    // RFC 7644 3.4.2.4: a negative count is 0; past the most a page holds,
    // a page holds the most (as AIP-158 does for page_size).
    let count = count.unwrap_or(DEFAULT_PAGE).clamp(0, MAX_PAGE);
    if start_index < 0 {
        v.push("start_index", "must not be negative");
    }
    for (field, value) in [
        ("display_name", &display_name),
        ("external_id", &external_id),
    ] {
        if let Some(value) = value {
            v.check(field, directory_key(value));
        }
    }
    v.finish()?;
    Ok(GroupListing {
        display_name,
        external_id,
        offset: i64::from(start_index.max(1)) - 1,
        count: i64::from(count),
    })
}

/// A member's etag as ReplaceDirectoryUser takes it: empty for none.
pub(super) fn expected_version(etag: &str) -> Result<Option<i64>, Error> {
    if etag.is_empty() {
        return Ok(None);
    }
    User::version_of_etag(etag)
        .map(Some)
        .ok_or_else(|| Error::invalid("etag", "is not an etag of this service"))
}

// ---- handlers ----

#[tonic::async_trait]
impl DirectoryService for DirectoryServiceImpl {
    async fn create_directory_token(
        &self,
        request: Request<proto::CreateDirectoryTokenRequest>,
    ) -> Result<Response<proto::CreateDirectoryTokenResponse>, Status> {
        let request_id = request_id(&request);
        let caller = authenticated(&self.state, &request).await?;
        caller.require(Permission::ScimManage)?;
        let proto::CreateDirectoryTokenRequest { display_name } = request.into_inner();
        let display_name = token_name(&display_name)?;
        let (token, secret) =
            operations::directory::create_token(&self.state, &caller, &request_id, display_name)
                .await?;
        Ok(Response::new(proto::CreateDirectoryTokenResponse {
            token: Some(wire::directory_token(&token)),
            secret: secret.expose().to_owned(),
        }))
    }

    async fn list_directory_tokens(
        &self,
        request: Request<proto::ListDirectoryTokensRequest>,
    ) -> Result<Response<proto::ListDirectoryTokensResponse>, Status> {
        let caller = authenticated(&self.state, &request).await?;
        let proto::ListDirectoryTokensRequest {
            page_size,
            page_token,
        } = request.into_inner();
        let page = convert::list_page(page_size, page_token)?;
        let page = operations::directory::list_tokens(&self.state, &caller, page).await?;
        let (tokens, next_page_token, total_size) = convert::listed(page, wire::directory_token);
        Ok(Response::new(proto::ListDirectoryTokensResponse {
            tokens,
            next_page_token,
            total_size,
        }))
    }

    async fn revoke_directory_token(
        &self,
        request: Request<proto::RevokeDirectoryTokenRequest>,
    ) -> Result<Response<proto::RevokeDirectoryTokenResponse>, Status> {
        let request_id = request_id(&request);
        let caller = authenticated(&self.state, &request).await?;
        caller.require(Permission::ScimManage)?;
        let proto::RevokeDirectoryTokenRequest { token_id } = request.into_inner();
        let token_id = convert::id_field("token_id", &token_id)?;
        let token =
            operations::directory::revoke_token(&self.state, &caller, &request_id, token_id)
                .await?;
        Ok(Response::new(proto::RevokeDirectoryTokenResponse {
            token: Some(wire::directory_token(&token)),
        }))
    }

    async fn create_directory_user(
        &self,
        request: Request<proto::CreateDirectoryUserRequest>,
    ) -> Result<Response<proto::CreateDirectoryUserResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.directory(&request).await?;
        caller.require(Permission::ScimManage)?;
        let proto::CreateDirectoryUserRequest { fields: input } = request.into_inner();
        let fields = fields(input)?;
        let member =
            operations::directory::create_user(&self.state, &caller, &request_id, fields).await?;
        Ok(Response::new(proto::CreateDirectoryUserResponse {
            user: Some(wire::directory_user(&member)),
        }))
    }

    async fn get_directory_user(
        &self,
        request: Request<proto::GetDirectoryUserRequest>,
    ) -> Result<Response<proto::GetDirectoryUserResponse>, Status> {
        let caller = self.directory(&request).await?;
        let proto::GetDirectoryUserRequest { user_id } = request.into_inner();
        let user_id = member_id(&user_id)?;
        let member = operations::directory::get_user(&self.state, &caller, user_id).await?;
        Ok(Response::new(proto::GetDirectoryUserResponse {
            user: Some(wire::directory_user(&member)),
        }))
    }

    async fn list_directory_users(
        &self,
        request: Request<proto::ListDirectoryUsersRequest>,
    ) -> Result<Response<proto::ListDirectoryUsersResponse>, Status> {
        let caller = self.directory(&request).await?;
        let listing = listing(request.into_inner())?;
        let (members, total) = operations::directory::list_users(
            &self.state,
            &caller,
            &listing.conditions,
            listing.offset,
            listing.count,
        )
        .await?;
        Ok(Response::new(proto::ListDirectoryUsersResponse {
            users: members.iter().map(wire::directory_user).collect(),
            total_results: convert::count(total),
        }))
    }

    async fn replace_directory_user(
        &self,
        request: Request<proto::ReplaceDirectoryUserRequest>,
    ) -> Result<Response<proto::ReplaceDirectoryUserResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.directory(&request).await?;
        caller.require(Permission::ScimManage)?;
        let proto::ReplaceDirectoryUserRequest {
            user_id,
            fields: input,
            etag,
        } = request.into_inner();
        let user_id = member_id(&user_id)?;
        let expected = expected_version(&etag)?;
        let fields = fields(input)?;
        let member = operations::directory::replace_user(
            &self.state,
            &caller,
            &request_id,
            user_id,
            fields,
            expected,
        )
        .await?;
        Ok(Response::new(proto::ReplaceDirectoryUserResponse {
            user: Some(wire::directory_user(&member)),
        }))
    }

    async fn create_directory_group(
        &self,
        request: Request<proto::CreateDirectoryGroupRequest>,
    ) -> Result<Response<proto::CreateDirectoryGroupResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.directory(&request).await?;
        caller.require(Permission::ScimManage)?;
        let proto::CreateDirectoryGroupRequest { fields } = request.into_inner();
        let fields = group_fields(fields)?;
        let (group, role) =
            operations::directory_groups::create(&self.state, &caller, &request_id, fields).await?;
        Ok(Response::new(proto::CreateDirectoryGroupResponse {
            group: Some(wire::directory_group(&group, role.as_deref())),
        }))
    }

    async fn get_directory_group(
        &self,
        request: Request<proto::GetDirectoryGroupRequest>,
    ) -> Result<Response<proto::GetDirectoryGroupResponse>, Status> {
        let caller = self.directory(&request).await?;
        let proto::GetDirectoryGroupRequest { group_id: id } = request.into_inner();
        let (group, role) =
            operations::directory_groups::get(&self.state, &caller, group_id(&id)?).await?;
        Ok(Response::new(proto::GetDirectoryGroupResponse {
            group: Some(wire::directory_group(&group, role.as_deref())),
        }))
    }

    async fn list_directory_groups(
        &self,
        request: Request<proto::ListDirectoryGroupsRequest>,
    ) -> Result<Response<proto::ListDirectoryGroupsResponse>, Status> {
        let caller = self.directory(&request).await?;
        let listing = group_listing(request.into_inner())?;
        let (groups, total) = operations::directory_groups::list(
            &self.state,
            &caller,
            listing.display_name.as_deref(),
            listing.external_id.as_deref(),
            listing.offset,
            listing.count,
        )
        .await?;
        Ok(Response::new(proto::ListDirectoryGroupsResponse {
            groups: groups
                .iter()
                .map(|(group, role)| wire::directory_group(group, role.as_deref()))
                .collect(),
            total_results: convert::count(total),
        }))
    }

    async fn replace_directory_group(
        &self,
        request: Request<proto::ReplaceDirectoryGroupRequest>,
    ) -> Result<Response<proto::ReplaceDirectoryGroupResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.directory(&request).await?;
        caller.require(Permission::ScimManage)?;
        let proto::ReplaceDirectoryGroupRequest {
            group_id: id,
            fields,
            etag,
        } = request.into_inner();
        let id = group_id(&id)?;
        let expected = expected_version(&etag)?;
        let fields = group_fields(fields)?;
        let (group, role) = operations::directory_groups::replace(
            &self.state,
            &caller,
            &request_id,
            id,
            fields,
            expected,
        )
        .await?;
        Ok(Response::new(proto::ReplaceDirectoryGroupResponse {
            group: Some(wire::directory_group(&group, role.as_deref())),
        }))
    }

    async fn delete_directory_group(
        &self,
        request: Request<proto::DeleteDirectoryGroupRequest>,
    ) -> Result<Response<proto::DeleteDirectoryGroupResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.directory(&request).await?;
        let proto::DeleteDirectoryGroupRequest { group_id: id } = request.into_inner();
        operations::directory_groups::delete(&self.state, &caller, &request_id, group_id(&id)?)
            .await?;
        Ok(Response::new(proto::DeleteDirectoryGroupResponse {}))
    }

    async fn delete_directory_user(
        &self,
        request: Request<proto::DeleteDirectoryUserRequest>,
    ) -> Result<Response<proto::DeleteDirectoryUserResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.directory(&request).await?;
        let proto::DeleteDirectoryUserRequest { user_id } = request.into_inner();
        let user_id = member_id(&user_id)?;
        operations::directory::delete_user(&self.state, &caller, &request_id, user_id).await?;
        Ok(Response::new(proto::DeleteDirectoryUserResponse {}))
    }
}
