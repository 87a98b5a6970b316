//! The RPCs as a test makes them: `…_as(bearer, …)` as the holder of a
//! token, the short forms as the owner. Each answers with what the call
//! returns, unwrapped from its response message.

use std::time::Duration;

use tonic::{Status, transport::Channel};
use uuid::Uuid;
use wowchat_users_api::v1::{
    self as proto, auth_service_client::AuthServiceClient, batch_invite_result::Outcome,
    join_service_client::JoinServiceClient, manage_user_request::Action,
    role_service_client::RoleServiceClient,
};
use wowchat_users_server::{
    domain::{EmailAddress, user::Password},
    operations::bootstrap::bootstrap,
};

use crate::{PASSWORD, TestApp, authed, invitation_request, manage_request};

/// A second workspace on the same server.
pub struct OtherWorkspace {
    pub workspace_id: Uuid,
    pub owner_id: Uuid,
    pub owner_token: String,
}

impl TestApp {
    pub async fn roles(&self) -> RoleServiceClient<Channel> {
        RoleServiceClient::new(self.channel().await)
    }

    pub async fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel().await)
    }

    pub async fn joining(&self) -> JoinServiceClient<Channel> {
        JoinServiceClient::new(self.channel().await)
    }

    // ---- users ----

    /// GetUser as the holder of `bearer`.
    pub async fn get_user_as(&self, bearer: &str, user_id: &str) -> Result<proto::User, Status> {
        let request = authed(
            bearer,
            proto::GetUserRequest {
                user_id: user_id.into(),
            },
        );
        let response = self.client().await.get_user(request).await?;
        Ok(response.into_inner().user.expect("a user in the response"))
    }

    /// The user as the owner reads it now.
    pub async fn user(&self, user_id: &str) -> proto::User {
        self.get_user_as(&self.owner_token, user_id)
            .await
            .expect("GetUser succeeds")
    }

    /// ManageUser as the holder of `bearer`.
    pub async fn manage_as(
        &self,
        bearer: &str,
        request: proto::ManageUserRequest,
    ) -> Result<proto::User, Status> {
        let response = self
            .client()
            .await
            .manage_user(authed(bearer, request))
            .await?;
        Ok(response.into_inner().user.expect("a user in the response"))
    }

    /// ManageUser of `user_id` with `action`, as the owner.
    pub async fn manage(&self, user_id: &str, action: Action) -> Result<proto::User, Status> {
        self.manage_as(&self.owner_token, manage_request(user_id, action))
            .await
    }

    /// ListUsers as the holder of `bearer`.
    pub async fn list_users_as(
        &self,
        bearer: &str,
        request: proto::ListUsersRequest,
    ) -> Result<proto::ListUsersResponse, Status> {
        let response = self
            .client()
            .await
            .list_users(authed(bearer, request))
            .await?;
        Ok(response.into_inner())
    }

    /// One page of ListUsers as the owner.
    pub async fn list_users(&self, request: proto::ListUsersRequest) -> proto::ListUsersResponse {
        self.list_users_as(&self.owner_token, request)
            .await
            .expect("ListUsers succeeds")
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

    /// ListActivity as the holder of `bearer`.
    pub async fn list_activity_as(
        &self,
        bearer: &str,
        request: proto::ListActivityRequest,
    ) -> Result<proto::ListActivityResponse, Status> {
        let response = self
            .client()
            .await
            .list_activity(authed(bearer, request))
            .await?;
        Ok(response.into_inner())
    }

    /// The activity entries matching `filter`, newest first, read by the
    /// owner in one page.
    pub async fn activity(&self, filter: proto::ListActivityRequest) -> Vec<proto::ActivityEntry> {
        let request = proto::ListActivityRequest {
            page_size: 200,
            ..filter
        };
        let page = self
            .list_activity_as(&self.owner_token, request)
            .await
            .expect("ListActivity succeeds");
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
        self.invite_as(&self.owner_token, invitation_request(email, role))
            .await
            .expect("invite succeeds")
    }

    /// InviteUser of `request` as the owner, answered as the call answers.
    pub async fn try_invite(
        &self,
        request: proto::InviteUserRequest,
    ) -> Result<proto::Invitation, Status> {
        self.invite_as(&self.owner_token, request).await
    }

    /// InviteUser as the holder of `bearer`.
    pub async fn invite_as(
        &self,
        bearer: &str,
        request: proto::InviteUserRequest,
    ) -> Result<proto::Invitation, Status> {
        let response = self
            .client()
            .await
            .invite_user(authed(bearer, request))
            .await?;
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

    /// BatchInviteUsers of `rows` as the holder of `bearer`: each row's outcome.
    pub async fn batch_invite_as(
        &self,
        bearer: &str,
        rows: Vec<proto::InviteUserRequest>,
    ) -> Result<Vec<Outcome>, Status> {
        let message = proto::BatchInviteUsersRequest { requests: rows };
        let response = self
            .client()
            .await
            .batch_invite_users(authed(bearer, message))
            .await?;
        let results = response.into_inner().results.into_iter();
        Ok(results
            .map(|result| result.outcome.expect("an outcome"))
            .collect())
    }

    /// UpdateInvitation as the holder of `bearer`.
    pub async fn update_invitation_as(
        &self,
        bearer: &str,
        request: proto::UpdateInvitationRequest,
    ) -> Result<proto::Invitation, Status> {
        let response = self
            .client()
            .await
            .update_invitation(authed(bearer, request))
            .await?;
        Ok(response.into_inner().invitation.expect("an invitation"))
    }

    /// ResendInvitation (default validity) as the holder of `bearer`.
    pub async fn resend_as(
        &self,
        bearer: &str,
        invitation_id: &str,
    ) -> Result<proto::Invitation, Status> {
        let message = proto::ResendInvitationRequest {
            invitation_id: invitation_id.into(),
            expires_in: None,
            etag: String::new(),
        };
        let response = self
            .client()
            .await
            .resend_invitation(authed(bearer, message))
            .await?;
        Ok(response.into_inner().invitation.expect("an invitation"))
    }

    /// RevokeInvitation as the holder of `bearer`.
    pub async fn revoke_as(
        &self,
        bearer: &str,
        invitation_id: &str,
    ) -> Result<proto::Invitation, Status> {
        let message = proto::RevokeInvitationRequest {
            invitation_id: invitation_id.into(),
            etag: String::new(),
        };
        let response = self
            .client()
            .await
            .revoke_invitation(authed(bearer, message))
            .await?;
        Ok(response.into_inner().invitation.expect("an invitation"))
    }

    /// GetInvitation as the holder of `bearer`.
    pub async fn get_invitation_as(
        &self,
        bearer: &str,
        invitation_id: &str,
    ) -> Result<proto::Invitation, Status> {
        let message = proto::GetInvitationRequest {
            invitation_id: invitation_id.into(),
        };
        let response = self
            .client()
            .await
            .get_invitation(authed(bearer, message))
            .await?;
        Ok(response.into_inner().invitation.expect("an invitation"))
    }

    /// The invitation as the owner reads it now.
    pub async fn invitation(&self, invitation_id: &str) -> proto::Invitation {
        self.get_invitation_as(&self.owner_token, invitation_id)
            .await
            .expect("get invitation")
    }

    /// ListInvitations as the holder of `bearer`.
    pub async fn list_invitations_as(
        &self,
        bearer: &str,
        request: proto::ListInvitationsRequest,
    ) -> Result<proto::ListInvitationsResponse, Status> {
        let response = self
            .client()
            .await
            .list_invitations(authed(bearer, request))
            .await?;
        Ok(response.into_inner())
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

    /// GetWorkspaceSettings as the holder of `bearer`.
    pub async fn settings_as(&self, bearer: &str) -> Result<proto::WorkspaceSettings, Status> {
        let request = authed(bearer, proto::GetWorkspaceSettingsRequest {});
        let response = self.client().await.get_workspace_settings(request).await?;
        Ok(response
            .into_inner()
            .settings
            .expect("settings in the response"))
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
        let message = proto::UpdateWorkspaceSettingsRequest {
            settings: Some(settings),
        };
        let response = self
            .client()
            .await
            .update_workspace_settings(authed(&self.owner_token, message))
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

    /// CreateRole as the holder of `bearer`.
    pub async fn create_role_as(
        &self,
        bearer: &str,
        name: &str,
        permissions: &[&str],
    ) -> Result<proto::Role, Status> {
        let permissions = strings(permissions);
        let message = proto::CreateRoleRequest {
            name: name.into(),
            permissions,
            request_id: String::new(),
        };
        let response = self
            .roles()
            .await
            .create_role(authed(bearer, message))
            .await?;
        Ok(response.into_inner().role.expect("a role in the response"))
    }

    /// CreateRole as the owner.
    pub async fn create_role(&self, name: &str, permissions: &[&str]) -> proto::Role {
        self.create_role_as(&self.owner_token, name, permissions)
            .await
            .expect("CreateRole succeeds")
    }

    /// UpdateRole (no etag) as the holder of `bearer`.
    pub async fn update_role_as(
        &self,
        bearer: &str,
        name: &str,
        permissions: &[&str],
    ) -> Result<proto::Role, Status> {
        let permissions = strings(permissions);
        let message = proto::UpdateRoleRequest {
            name: name.into(),
            permissions,
            ..Default::default()
        };
        let response = self
            .roles()
            .await
            .update_role(authed(bearer, message))
            .await?;
        Ok(response.into_inner().role.expect("a role in the response"))
    }

    /// DeleteRole as the holder of `bearer`.
    pub async fn delete_role_as(&self, bearer: &str, name: &str) -> Result<proto::Role, Status> {
        let message = proto::DeleteRoleRequest {
            name: name.into(),
            request_id: String::new(),
        };
        let response = self
            .roles()
            .await
            .delete_role(authed(bearer, message))
            .await?;
        Ok(response.into_inner().role.expect("a role in the response"))
    }

    /// ListRoles as the holder of `bearer`.
    pub async fn list_roles_as(&self, bearer: &str) -> Result<Vec<proto::Role>, Status> {
        let request = authed(bearer, proto::ListRolesRequest::default());
        let response = self.roles().await.list_roles(request).await?;
        Ok(response.into_inner().roles)
    }

    /// CheckPermission of `user_id` for `permission`, as the holder of `bearer`.
    pub async fn check_permission_as(
        &self,
        bearer: &str,
        user_id: &str,
        permission: &str,
    ) -> Result<proto::CheckPermissionResponse, Status> {
        let message = proto::CheckPermissionRequest {
            user_id: user_id.into(),
            permission: permission.into(),
        };
        let response = self
            .roles()
            .await
            .check_permission(authed(bearer, message))
            .await?;
        Ok(response.into_inner())
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

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}
