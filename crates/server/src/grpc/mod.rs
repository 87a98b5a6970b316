//! The gRPC transport: thin handlers that authenticate, parse the request
//! into domain values (`convert`), call an operation and convert the result.

pub mod auth;
pub mod connections;
pub mod convert;
pub mod directory;
pub mod gateway;
pub mod joining;
pub mod metrics;
pub mod overload;
pub mod roles;
pub mod status;

#[cfg(test)]
mod parsing_tests;

use std::sync::Arc;

use tonic::{Request, Response, Status};
use wowchat_users_api::v1::{self as proto, user_service_server::UserService};

use crate::{
    auth::{Caller, caller::authenticate},
    domain::{
        Error,
        invitation::{InvitationUpdate, NewInvitation},
        user::{AcceptInvitation, ManageUser},
        workspace::SettingsUpdate,
    },
    operations::{self, AppState},
    store::user_listing::TotalSize,
    wire,
};

/// The metadata key of the request id, set by the server when a caller sends none.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

pub struct UserServiceImpl {
    state: Arc<AppState>,
    /// ListUsers counts matches exactly up to this many, then estimates.
    exact_count_up_to: i64,
}

impl UserServiceImpl {
    pub fn new(state: Arc<AppState>) -> Self {
        UserServiceImpl {
            state,
            exact_count_up_to: crate::config::DEFAULT_LIST_EXACT_COUNT_LIMIT,
        }
    }

    /// ListUsers counts matches exactly up to `limit`, then estimates.
    pub fn with_exact_count_limit(mut self, limit: i64) -> Self {
        self.exact_count_up_to = limit;
        self
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Error> {
        authenticated(&self.state, request).await
    }
}

/// The caller of an authenticated RPC of any service, whose last-active
/// time this call counts towards.
pub(crate) async fn authenticated<T>(
    state: &AppState,
    request: &Request<T>,
) -> Result<Caller, Error> {
    let caller = authenticate(&state.pool, &state.keys, &state.callers, request.metadata()).await?;
    operations::sign_in::note_activity(state, &caller).await;
    Ok(caller)
}

/// The request's id, for the activity log and the logs; bounded in length.
fn request_id<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(|id| id.chars().take(128).collect())
        .unwrap_or_default()
}

#[tonic::async_trait]
impl UserService for UserServiceImpl {
    async fn invite_user(
        &self,
        request: Request<proto::InviteUserRequest>,
    ) -> Result<Response<proto::InviteUserResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.caller(&request).await?;
        let new = NewInvitation::try_from(request.into_inner())?;
        let invitation =
            operations::invitations::invite(&self.state, &caller, &request_id, new).await?;
        Ok(Response::new(proto::InviteUserResponse {
            invitation: Some(wire::invitation(&invitation)),
        }))
    }

    async fn accept_invitation(
        &self,
        request: Request<proto::AcceptInvitationRequest>,
    ) -> Result<Response<proto::AcceptInvitationResponse>, Status> {
        let request_id = request_id(&request);
        let client = auth::client_address(&request, &self.state.sign_in);
        let accept = AcceptInvitation::try_from(request.into_inner())?;
        let user =
            operations::invitations::accept(&self.state, &request_id, accept, client).await?;
        Ok(Response::new(proto::AcceptInvitationResponse {
            user: Some(wire::user(&user)),
        }))
    }

    async fn manage_user(
        &self,
        request: Request<proto::ManageUserRequest>,
    ) -> Result<Response<proto::ManageUserResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.caller(&request).await?;
        let command = ManageUser::try_from(request.into_inner())?;
        let user = operations::users::manage(&self.state, &caller, &request_id, command).await?;
        Ok(Response::new(proto::ManageUserResponse {
            user: Some(wire::user(&user)),
        }))
    }

    async fn get_user(
        &self,
        request: Request<proto::GetUserRequest>,
    ) -> Result<Response<proto::GetUserResponse>, Status> {
        let caller = self.caller(&request).await?;
        let proto::GetUserRequest { user_id } = request.into_inner();
        let user_id = convert::id_field("user_id", &user_id)?;
        let user = operations::users::get(&self.state, &caller, user_id).await?;
        Ok(Response::new(proto::GetUserResponse {
            user: Some(wire::user(&user)),
        }))
    }

    async fn list_users(
        &self,
        request: Request<proto::ListUsersRequest>,
    ) -> Result<Response<proto::ListUsersResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (filter, order, page) = convert::list_users(request.into_inner())?;
        let page = operations::users::list(
            &self.state,
            &caller,
            filter,
            order,
            page,
            self.exact_count_up_to,
        )
        .await?;
        let (total_size, total_size_is_estimate) = match page.total_size {
            TotalSize::Exact(n) => (n, false),
            TotalSize::Estimate(n) => (n, true),
        };
        Ok(Response::new(proto::ListUsersResponse {
            users: page.items.iter().map(wire::user).collect(),
            next_page_token: page.next_page_token,
            total_size: convert::count(total_size),
            total_size_is_estimate,
        }))
    }

    async fn get_invitation(
        &self,
        request: Request<proto::GetInvitationRequest>,
    ) -> Result<Response<proto::GetInvitationResponse>, Status> {
        let caller = self.caller(&request).await?;
        let proto::GetInvitationRequest { invitation_id } = request.into_inner();
        let invitation_id = convert::id_field("invitation_id", &invitation_id)?;
        let invitation = operations::invitations::READS
            .get(&self.state, &caller, invitation_id)
            .await?;
        Ok(Response::new(proto::GetInvitationResponse {
            invitation: Some(wire::invitation(&invitation)),
        }))
    }

    async fn list_invitations(
        &self,
        request: Request<proto::ListInvitationsRequest>,
    ) -> Result<Response<proto::ListInvitationsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (filter, page) = convert::list_invitations(request.into_inner())?;
        let page = operations::invitations::READS
            .list(&self.state, &caller, filter, page)
            .await?;
        let (invitations, next_page_token, total_size) = convert::listed(page, wire::invitation);
        Ok(Response::new(proto::ListInvitationsResponse {
            invitations,
            next_page_token,
            total_size,
        }))
    }

    async fn resend_invitation(
        &self,
        request: Request<proto::ResendInvitationRequest>,
    ) -> Result<Response<proto::ResendInvitationResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.caller(&request).await?;
        let proto::ResendInvitationRequest {
            invitation_id,
            expires_in,
            etag,
        } = request.into_inner();
        let invitation_id = convert::id_field("invitation_id", &invitation_id)?;
        let valid_for = convert::resend_validity(expires_in)?;
        let expected_version = convert::etag_field(&etag)?;
        let invitation = operations::invitations::resend(
            &self.state,
            &caller,
            &request_id,
            invitation_id,
            valid_for,
            expected_version,
        )
        .await?;
        Ok(Response::new(proto::ResendInvitationResponse {
            invitation: Some(wire::invitation(&invitation)),
        }))
    }

    async fn revoke_invitation(
        &self,
        request: Request<proto::RevokeInvitationRequest>,
    ) -> Result<Response<proto::RevokeInvitationResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.caller(&request).await?;
        let proto::RevokeInvitationRequest {
            invitation_id,
            etag,
        } = request.into_inner();
        let invitation_id = convert::id_field("invitation_id", &invitation_id)?;
        let expected_version = convert::etag_field(&etag)?;
        let invitation = operations::invitations::revoke(
            &self.state,
            &caller,
            &request_id,
            invitation_id,
            expected_version,
        )
        .await?;
        Ok(Response::new(proto::RevokeInvitationResponse {
            invitation: Some(wire::invitation(&invitation)),
        }))
    }

    async fn batch_invite_users(
        &self,
        request: Request<proto::BatchInviteUsersRequest>,
    ) -> Result<Response<proto::BatchInviteUsersResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.caller(&request).await?;
        let rows = convert::batch_invite(request.into_inner())?;
        let results =
            operations::invitations::batch_invite(&self.state, &caller, &request_id, rows).await?;
        Ok(Response::new(proto::BatchInviteUsersResponse {
            results: results
                .into_iter()
                .map(convert::batch_invite_result)
                .collect(),
        }))
    }

    async fn update_invitation(
        &self,
        request: Request<proto::UpdateInvitationRequest>,
    ) -> Result<Response<proto::UpdateInvitationResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.caller(&request).await?;
        let update = InvitationUpdate::try_from(request.into_inner())?;
        let invitation =
            operations::invitations::update(&self.state, &caller, &request_id, update).await?;
        Ok(Response::new(proto::UpdateInvitationResponse {
            invitation: Some(wire::invitation(&invitation)),
        }))
    }

    async fn preview_invitation(
        &self,
        request: Request<proto::PreviewInvitationRequest>,
    ) -> Result<Response<proto::PreviewInvitationResponse>, Status> {
        let client = auth::client_address(&request, &self.state.sign_in);
        let token = convert::preview_token(request.into_inner());
        let preview = operations::invitations::preview(&self.state, token, client).await?;
        Ok(Response::new(convert::invitation_preview(&preview)))
    }

    async fn get_workspace_settings(
        &self,
        request: Request<proto::GetWorkspaceSettingsRequest>,
    ) -> Result<Response<proto::GetWorkspaceSettingsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let proto::GetWorkspaceSettingsRequest {} = request.into_inner();
        let (settings, version) = operations::workspace_settings::get(&self.state, &caller).await?;
        Ok(Response::new(proto::GetWorkspaceSettingsResponse {
            settings: Some(wire::workspace_settings(&settings, version)),
        }))
    }

    async fn update_workspace_settings(
        &self,
        request: Request<proto::UpdateWorkspaceSettingsRequest>,
    ) -> Result<Response<proto::UpdateWorkspaceSettingsResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.caller(&request).await?;
        let update = SettingsUpdate::try_from(request.into_inner())?;
        let (settings, version) =
            operations::workspace_settings::update(&self.state, &caller, &request_id, update)
                .await?;
        Ok(Response::new(proto::UpdateWorkspaceSettingsResponse {
            settings: Some(wire::workspace_settings(&settings, version)),
        }))
    }

    async fn list_activity(
        &self,
        request: Request<proto::ListActivityRequest>,
    ) -> Result<Response<proto::ListActivityResponse>, Status> {
        let caller = self.caller(&request).await?;
        let (filter, page) = convert::list_activity(request.into_inner())?;
        let page = operations::activity::list(&self.state, &caller, filter, page).await?;
        Ok(Response::new(proto::ListActivityResponse {
            entries: page.items.iter().map(wire::activity_entry).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_email_suppression(
        &self,
        request: Request<proto::GetEmailSuppressionRequest>,
    ) -> Result<Response<proto::GetEmailSuppressionResponse>, Status> {
        let caller = self.caller(&request).await?;
        let email = convert::suppressed_email(request.into_inner())?;
        let suppression = operations::suppressions::get(&self.state, &caller, &email).await?;
        Ok(Response::new(proto::GetEmailSuppressionResponse {
            suppression: Some(wire::email_suppression(&suppression)),
        }))
    }

    async fn clear_email_suppression(
        &self,
        request: Request<proto::ClearEmailSuppressionRequest>,
    ) -> Result<Response<proto::ClearEmailSuppressionResponse>, Status> {
        let request_id = request_id(&request);
        let caller = self.caller(&request).await?;
        let (email, idempotency) = convert::clear_email_suppression(request.into_inner())?;
        let cleared = operations::suppressions::clear(
            &self.state,
            &caller,
            &request_id,
            &email,
            idempotency.as_ref(),
        )
        .await?;
        Ok(Response::new(proto::ClearEmailSuppressionResponse {
            cleared: cleared.as_ref().map(wire::email_suppression),
        }))
    }

    async fn unsubscribe(
        &self,
        request: Request<proto::UnsubscribeRequest>,
    ) -> Result<Response<proto::UnsubscribeResponse>, Status> {
        let request_id = request_id(&request);
        let token = convert::unsubscribe_token(request.into_inner())?;
        let email = operations::suppressions::unsubscribe(&self.state, &request_id, &token).await?;
        Ok(Response::new(proto::UnsubscribeResponse { email }))
    }
}
