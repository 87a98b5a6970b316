//! The RPCs as a test makes them. `app.as_(bearer)` is every service as
//! the holder of a token: any RPC, new ones included, is called on it with
//! its plain request message, e.g. `app.as_(&sue).users.get_user(request)`,
//! and answers as the generated client does. The short forms (`user`,
//! `invite`, `create_role`, …) are the owner's everyday calls, unwrapped
//! from their response messages.

use std::time::Duration;

use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use uuid::Uuid;
use wowchat_users_api::v1::{
    self as proto, auth_service_client::AuthServiceClient,
    directory_service_client::DirectoryServiceClient, join_service_client::JoinServiceClient,
    manage_user_request::Action, role_service_client::RoleServiceClient,
    user_service_client::UserServiceClient,
};
use wowchat_users_server::{
    domain::{EmailAddress, user::Password},
    operations::bootstrap::bootstrap,
};

use crate::{
    PASSWORD, TestApp, get_invitation_request, get_user_request, invitation_request,
    manage_request, new_role, revoke_request, strings,
};

/// A response carrying the invitation its call made, read or changed.
pub trait CarriesInvitation {
    fn into_invitation(self) -> Option<proto::Invitation>;
}

macro_rules! carries_invitation {
    ($($response:ident),+) => {$(
        impl CarriesInvitation for proto::$response {
            fn into_invitation(self) -> Option<proto::Invitation> {
                self.invitation
            }
        }
    )+};
}

carries_invitation!(
    InviteUserResponse,
    GetInvitationResponse,
    UpdateInvitationResponse,
    ResendInvitationResponse,
    RevokeInvitationResponse
);

/// The invitation in a call's answer (`.await.invitation()`); panics,
/// as `unwrap` would, when the call failed.
pub trait InvitationAnswer {
    fn invitation(self) -> proto::Invitation;
}

impl<R: CarriesInvitation> InvitationAnswer for Result<tonic::Response<R>, Status> {
    fn invitation(self) -> proto::Invitation {
        let response = self.expect("the call succeeds").into_inner();
        response.into_invitation().expect("an invitation")
    }
}

/// Gives every request it passes `authorization: Bearer <token>`.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    pub fn new(token: &str) -> Bearer {
        let value = format!("Bearer {token}");
        Bearer(value.try_into().expect("a token fit for a header"))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A channel whose every call carries one bearer token.
pub type Authorized = InterceptedService<Channel, Bearer>;

/// Every service as the holder of one bearer token.
pub struct Services {
    pub users: UserServiceClient<Authorized>,
    pub roles: RoleServiceClient<Authorized>,
    pub joining: JoinServiceClient<Authorized>,
    pub auth: AuthServiceClient<Authorized>,
    pub directory: DirectoryServiceClient<Authorized>,
}

impl Services {
    /// The services of `channel`, each call as the holder of `bearer`.
    pub fn on(channel: Channel, bearer: &str) -> Services {
        let bearer = Bearer::new(bearer);
        Services {
            users: UserServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            roles: RoleServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            joining: JoinServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            auth: AuthServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            directory: DirectoryServiceClient::with_interceptor(channel, bearer),
        }
    }
}

/// A second workspace on the same server.
pub struct OtherWorkspace {
    pub workspace_id: Uuid,
    pub owner_id: Uuid,
    pub owner_token: String,
}

impl TestApp {
    /// Every service of this server as the holder of `bearer`, on a
    /// connection of its own (made at the first call).
    pub fn as_(&self, bearer: &str) -> Services {
        let channel = Channel::from_shared(self.address.clone())
            .expect("the server's address")
            .connect_lazy();
        Services::on(channel, bearer)
    }

    /// Every service as the workspace's owner.
    pub fn as_owner(&self) -> Services {
        self.as_(&self.owner_token)
    }

    pub async fn roles(&self) -> RoleServiceClient<Channel> {
        RoleServiceClient::new(self.channel().await)
    }

    pub async fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel().await)
    }

    pub async fn joining(&self) -> JoinServiceClient<Channel> {
        JoinServiceClient::new(self.channel().await)
    }

    // ---- join requests ----

    /// ConfirmJoinRequest with `token` (a public call): the workspace's name.
    pub async fn confirm_join_request(&self, token: &str) -> Result<String, Status> {
        let request = proto::ConfirmJoinRequestRequest {
            token: token.into(),
        };
        let response = self.joining().await.confirm_join_request(request).await?;
        Ok(response.into_inner().workspace_name)
    }

    /// The workspace's join requests as `bearer` lists them.
    pub async fn join_requests(&self, bearer: &str) -> Vec<proto::JoinRequest> {
        let request = crate::authed(bearer, proto::ListJoinRequestsRequest::default());
        let response = self.joining().await.list_join_requests(request).await;
        response
            .expect("ListJoinRequests")
            .into_inner()
            .join_requests
    }

    // ---- users ----

    /// The user as the owner reads it now.
    pub async fn user(&self, user_id: &str) -> proto::User {
        let request = get_user_request(user_id);
        let response = self.as_owner().users.get_user(request).await;
        let user = response.expect("GetUser succeeds").into_inner().user;
        user.expect("a user in the response")
    }

    /// ManageUser of `user_id` with `action`, as the owner.
    pub async fn manage(&self, user_id: &str, action: Action) -> Result<proto::User, Status> {
        self.try_manage(manage_request(user_id, action)).await
    }

    /// ManageUser of `request` as the owner, answered as the call answers.
    pub async fn try_manage(
        &self,
        request: proto::ManageUserRequest,
    ) -> Result<proto::User, Status> {
        let response = self.as_owner().users.manage_user(request).await?;
        Ok(response.into_inner().user.expect("a user in the response"))
    }

    /// One page of ListUsers as the owner.
    pub async fn list_users(&self, request: proto::ListUsersRequest) -> proto::ListUsersResponse {
        let response = self.as_owner().users.list_users(request).await;
        response.expect("ListUsers succeeds").into_inner()
    }

    /// Every page of ListUsers for `filter` as the owner, following the
    /// page tokens to the end.
    pub async fn user_pages(
        &self,
        filter: proto::ListUsersRequest,
    ) -> Vec<proto::ListUsersResponse> {
        let mut pages: Vec<proto::ListUsersResponse> = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = proto::ListUsersRequest {
                page_token,
                ..filter.clone()
            };
            let page = self.list_users(request).await;
            if filter.page_size > 0 {
                let page_size = usize::try_from(filter.page_size).unwrap();
                assert!(
                    page.users.len() <= page_size,
                    "a page holds at most page_size users"
                );
            }
            page_token = page.next_page_token.clone();
            pages.push(page);
            if page_token.is_empty() {
                return pages;
            }
            assert!(pages.len() < 100, "pagination does not end");
        }
    }

    /// The activity entries matching `filter`, newest first, read by the
    /// owner in one page.
    pub async fn activity(&self, filter: proto::ListActivityRequest) -> Vec<proto::ActivityEntry> {
        let request = proto::ListActivityRequest {
            page_size: 200,
            ..filter
        };
        let response = self.as_owner().users.list_activity(request).await;
        let page = response.expect("ListActivity succeeds").into_inner();
        assert!(page.next_page_token.is_empty(), "expected one page");
        page.entries
    }

    /// The entries with `action` about `target_user_id`, newest first.
    pub async fn activity_about(
        &self,
        target_user_id: &str,
        action: &str,
    ) -> Vec<proto::ActivityEntry> {
        let filter = proto::ListActivityRequest {
            target_user_id: target_user_id.into(),
            action: action.into(),
            ..Default::default()
        };
        self.activity(filter).await
    }

    // ---- invitations ----

    /// Invites `email` as `role` as the owner.
    pub async fn invite(&self, email: &str, role: &str) -> proto::Invitation {
        self.try_invite(invitation_request(email, role))
            .await
            .expect("invite succeeds")
    }

    /// Revokes the invitation as the owner: the revoked invitation.
    pub async fn revoke(&self, invitation_id: &str) -> proto::Invitation {
        let response = self
            .as_owner()
            .users
            .revoke_invitation(revoke_request(invitation_id))
            .await
            .expect("revoke succeeds");
        response.into_inner().invitation.expect("an invitation")
    }

    /// InviteUser of `request` as the owner, answered as the call answers.
    pub async fn try_invite(
        &self,
        request: proto::InviteUserRequest,
    ) -> Result<proto::Invitation, Status> {
        let response = self.as_owner().users.invite_user(request).await?;
        Ok(response.into_inner().invitation.expect("an invitation"))
    }

    /// A member with `role` (invited by the owner, accepted), and their token.
    pub async fn member(&self, email: &str, role: &str) -> (proto::User, String) {
        let invitation = self.invite(email, role).await;
        let token = self.invitation_token(&invitation.id).await;
        let user = self
            .accept_named(&token, &format!("{role} {email}"))
            .await
            .expect("accept succeeds");
        let bearer = self.token_for(user.id.parse().unwrap());
        (user, bearer)
    }

    /// The invitation as the owner reads it now.
    pub async fn invitation(&self, invitation_id: &str) -> proto::Invitation {
        let request = get_invitation_request(invitation_id);
        let response = self.as_owner().users.get_invitation(request).await;
        let invitation = response.expect("get invitation").into_inner().invitation;
        invitation.expect("an invitation")
    }

    /// AcceptInvitation with `token`, as the invitee.
    pub async fn accept(&self, token: &str) -> Result<proto::User, Status> {
        self.accept_named(token, "Invitee").await
    }

    /// AcceptInvitation with `token`, as an invitee who gives `display_name`.
    pub async fn accept_named(
        &self,
        token: &str,
        display_name: &str,
    ) -> Result<proto::User, Status> {
        let request = proto::AcceptInvitationRequest {
            token: token.into(),
            display_name: display_name.into(),
            password: PASSWORD.into(),
        };
        let response = self.client().await.accept_invitation(request).await?;
        Ok(response.into_inner().user.expect("a user in the response"))
    }

    /// PreviewInvitation of `token`.
    pub async fn preview(&self, token: &str) -> Result<proto::PreviewInvitationResponse, Status> {
        let request = proto::PreviewInvitationRequest {
            token: token.into(),
        };
        let response = self.client().await.preview_invitation(request).await?;
        Ok(response.into_inner())
    }

    /// The workspace's settings as the owner reads them now.
    pub async fn workspace_settings(&self) -> proto::WorkspaceSettings {
        let request = proto::GetWorkspaceSettingsRequest {};
        let response = self.as_owner().users.get_workspace_settings(request).await;
        let settings = response
            .expect("GetWorkspaceSettings succeeds")
            .into_inner();
        settings.settings.expect("settings in the response")
    }

    /// UpdateWorkspaceSettings as the owner.
    pub async fn update_settings(
        &self,
        seat_limit: i32,
        allowed_email_domains: &[&str],
    ) -> Result<proto::WorkspaceSettings, Status> {
        let settings = proto::WorkspaceSettings {
            seat_limit,
            allowed_email_domains: strings(allowed_email_domains),
            ..Default::default()
        };
        let request = proto::UpdateWorkspaceSettingsRequest {
            settings: Some(settings),
        };
        let response = self
            .as_owner()
            .users
            .update_workspace_settings(request)
            .await?;
        Ok(response
            .into_inner()
            .settings
            .expect("settings in the response"))
    }

    /// Sets the workspace's seat limit as the owner (any email domain).
    pub async fn set_seat_limit(&self, seat_limit: i32) {
        self.update_settings(seat_limit, &[])
            .await
            .expect("settings update");
    }

    // ---- roles ----

    /// CreateRole as the owner.
    pub async fn create_role(&self, name: &str, permissions: &[&str]) -> proto::Role {
        let request = new_role(name, permissions);
        let response = self.as_owner().roles.create_role(request).await;
        let role = response.expect("CreateRole succeeds").into_inner().role;
        role.expect("a role in the response")
    }

    /// The roles as the owner lists them: the built-in ones, then the
    /// workspace's own.
    pub async fn listed_roles(&self) -> Vec<proto::Role> {
        let request = proto::ListRolesRequest::default();
        let response = self.as_owner().roles.list_roles(request).await;
        response.expect("ListRoles succeeds").into_inner().roles
    }

    // ---- another workspace ----

    /// Bootstraps a second workspace, "Other", owned by "Other Owner"
    /// (other@example.com).
    pub async fn other_workspace(&self) -> OtherWorkspace {
        let created = bootstrap(
            &self.state,
            "Other",
            &EmailAddress::parse("other@example.com").unwrap(),
            "Other Owner",
            Password::parse(PASSWORD).unwrap(),
        )
        .await
        .expect("the second workspace bootstraps");
        let lifetime = Duration::from_secs(3600);
        let owner_token = self
            .state
            .keys
            .mint(created.owner_id, created.workspace_id, lifetime)
            .unwrap();
        OtherWorkspace {
            workspace_id: created.workspace_id,
            owner_id: created.owner_id,
            owner_token,
        }
    }
}
