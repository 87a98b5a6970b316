//! `JoinService`: invite links and join requests. The public calls (a
//! link's preview and redemption, a request and its confirmation) take no
//! bearer token; the rest need `users.invite`.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use wowchat_users_api::v1::{self as proto, join_service_server::JoinService};

use super::{
    auth::client_address,
    authenticated,
    convert::{self, duration, fingerprint_of, id_field, optional_enum, optional_uuid, unrecorded},
    request_id,
};
use crate::{
    domain::{
        EmailAddress, Error, Violations,
        idempotency::IdempotencyKey,
        invitation::{InvitationToken, Validity},
        joining::{
            InviteLinkState, JoinRequestStatus, LinkSecret, LinkUses, NewInviteLink,
            NewJoinRequest, Redemption,
        },
        mail_domain::{DomainUpdate, EnrollmentMode, JoinByEmail, parse_domain_name},
        permission::parse_role_name,
        text,
    },
    operations::{
        self, AppState,
        join_requests::{Approval, Denial},
    },
    wire,
};

pub struct JoinServiceImpl {
    state: Arc<AppState>,
}

impl JoinServiceImpl {
    pub fn new(state: Arc<AppState>) -> Self {
        JoinServiceImpl { state }
    }
}

// ---- wire to domain ----

pub(super) fn new_link(request: proto::CreateInviteLinkRequest) -> Result<NewInviteLink, Error> {
    let proto::CreateInviteLinkRequest {
        role,
        reporting_to_user_id,
        expires_in,
        max_uses,
        requires_approval,
    } = request;
    let mut v = Violations::default();
    let role = v.check("role", parse_role_name(&role));
    let reporting_to = v.check(
        "reporting_to_user_id",
        optional_uuid(reporting_to_user_id.as_deref().unwrap_or_default()),
    );
    let valid_for = v.check("expires_in", duration(expires_in).and_then(Validity::parse));
    let max_uses = v.check("max_uses", LinkUses::parse(max_uses));
    v.finish()?;
    match (role, reporting_to, valid_for, max_uses) {
        (Some(role), Some(reporting_to), Some(valid_for), Some(max_uses)) => Ok(NewInviteLink {
            role,
            reporting_to,
            valid_for,
            max_uses,
            requires_approval,
            idempotency: None,
        }),
        _ => Err(unrecorded()),
    }
}

pub(super) fn link_state(state: i32) -> Result<Option<InviteLinkState>, Error> {
    use proto::InviteLinkState as S;
    optional_enum(state, "is not an invite link state", |s| match s {
        S::Unspecified => None,
        S::Active => Some(InviteLinkState::Active),
        S::Expired => Some(InviteLinkState::Expired),
        S::Revoked => Some(InviteLinkState::Revoked),
        S::Exhausted => Some(InviteLinkState::Exhausted),
    })
    .map_err(|why| Error::invalid("state", why))
}

pub(super) fn request_state(state: i32) -> Result<Option<JoinRequestStatus>, Error> {
    use proto::JoinRequestState as S;
    optional_enum(state, "is not a join request state", |s| match s {
        S::Unspecified => None,
        S::Pending => Some(JoinRequestStatus::Pending),
        S::Approved => Some(JoinRequestStatus::Approved),
        S::Denied => Some(JoinRequestStatus::Denied),
        S::Expired => Some(JoinRequestStatus::Expired),
    })
    .map_err(|why| Error::invalid("state", why))
}

/// The `enrollment_mode` of UpdateDomain: unspecified leaves it as it is.
fn new_enrollment_mode(mode: i32) -> Result<Option<EnrollmentMode>, String> {
    use proto::EnrollmentMode as M;
    optional_enum(mode, "is not an enrollment mode", |m| match m {
        M::Unspecified => None,
        M::Manual => Some(EnrollmentMode::Manual),
        M::Invite => Some(EnrollmentMode::Invite),
        M::Suggest => Some(EnrollmentMode::Suggest),
    })
}

/// What a stranger tells the administrators: their name and a message.
fn introduction(
    v: &mut Violations,
    display_name: &str,
    message: &str,
) -> (Option<String>, Option<String>) {
    (
        v.check("display_name", text::display_name(display_name)),
        v.check("message", text::personal_message(message)),
    )
}

/// An address, and the name and message a stranger may give with it (read
/// only when a join request follows: an empty name stands for the address).
/// It takes the fields as the requests' destructuring hands them over.
fn address_with_introduction(
    email: String,
    display_name: String,
    message: String,
) -> Result<(EmailAddress, String, String), Error> {
    let mut v = Violations::default();
    let email = v.check("email", EmailAddress::parse(&email));
    let (display_name, message) = if display_name.is_empty() && message.is_empty() {
        (Some(String::new()), Some(String::new()))
    } else {
        introduction(&mut v, &display_name, &message)
    };
    v.finish()?;
    match (email, display_name, message) {
        (Some(email), Some(display_name), Some(message)) => {
            let display_name = if display_name.is_empty() {
                email.as_typed().to_owned()
            } else {
                display_name
            };
            Ok((email, display_name, message))
        }
        _ => Err(unrecorded()),
    }
}

pub(super) fn redemption(request: proto::RedeemInviteLinkRequest) -> Result<Redemption, Error> {
    let proto::RedeemInviteLinkRequest {
        secret,
        email,
        display_name,
        message,
    } = request;
    let (email, display_name, message) = address_with_introduction(email, display_name, message)?;
    let secret = LinkSecret::parse(&secret).ok_or_else(Error::invite_link_not_found)?;
    Ok(Redemption {
        secret,
        email,
        display_name,
        message,
    })
}

pub(super) fn new_join_request(
    request: proto::CreateJoinRequestRequest,
) -> Result<NewJoinRequest, Error> {
    let proto::CreateJoinRequestRequest {
        workspace_id,
        email,
        display_name,
        message,
    } = request;
    let mut v = Violations::default();
    let workspace_id = v.check("workspace_id", super::convert::uuid(&workspace_id));
    let email = v.check("email", EmailAddress::parse(&email));
    let (display_name, message) = introduction(&mut v, &display_name, &message);
    v.finish()?;
    match (workspace_id, email, display_name, message) {
        (Some(workspace_id), Some(email), Some(display_name), Some(message)) => {
            Ok(NewJoinRequest {
                workspace_id,
                email,
                display_name,
                message,
            })
        }
        _ => Err(unrecorded()),
    }
}

pub(super) fn approval(request: proto::ApproveJoinRequestRequest) -> Result<Approval, Error> {
    let fingerprint = fingerprint_of(&request, |r| r.request_id.clear());
    let proto::ApproveJoinRequestRequest {
        join_request_id,
        role,
        reporting_to_user_id,
        request_id,
    } = request;
    let mut v = Violations::default();
    let idempotency = v.check(
        "request_id",
        IdempotencyKey::parse(&request_id, &fingerprint),
    );
    let join_request_id = v.check("join_request_id", super::convert::uuid(&join_request_id));
    let role = if role.is_empty() {
        Some(String::new())
    } else {
        v.check("role", parse_role_name(&role))
    };
    let reporting_to = v.check(
        "reporting_to_user_id",
        optional_uuid(reporting_to_user_id.as_deref().unwrap_or_default()),
    );
    v.finish()?;
    match (join_request_id, role, reporting_to, idempotency) {
        (Some(join_request_id), Some(role), Some(reporting_to), Some(idempotency)) => {
            Ok(Approval {
                join_request_id,
                role,
                reporting_to,
                idempotency,
            })
        }
        _ => Err(unrecorded()),
    }
}

pub(super) fn denial(request: proto::DenyJoinRequestRequest) -> Result<Denial, Error> {
    let fingerprint = fingerprint_of(&request, |r| r.request_id.clear());
    let proto::DenyJoinRequestRequest {
        join_request_id,
        reason,
        request_id,
    } = request;
    let mut v = Violations::default();
    let join_request_id = v.check("join_request_id", super::convert::uuid(&join_request_id));
    let reason = v.check("reason", text::optional_text(&reason, 500));
    let idempotency = v.check(
        "request_id",
        IdempotencyKey::parse(&request_id, &fingerprint),
    );
    v.finish()?;
    match (join_request_id, reason, idempotency) {
        (Some(join_request_id), Some(reason), Some(idempotency)) => Ok(Denial {
            join_request_id,
            reason,
            idempotency,
        }),
        _ => Err(unrecorded()),
    }
}

pub(super) fn domain_update(request: proto::UpdateDomainRequest) -> Result<DomainUpdate, Error> {
    let proto::UpdateDomainRequest {
        domain_id,
        enrollment_mode,
        default_role,
    } = request;
    let mut v = Violations::default();
    let id = v.check("domain_id", super::convert::uuid(&domain_id));
    let enrollment_mode = v.check("enrollment_mode", new_enrollment_mode(enrollment_mode));
    let default_role = v.check(
        "default_role",
        default_role.as_deref().map(parse_role_name).transpose(),
    );
    v.finish()?;
    match (id, enrollment_mode, default_role) {
        (Some(id), Some(enrollment_mode), Some(default_role)) => Ok(DomainUpdate {
            id,
            enrollment_mode,
            default_role,
        }),
        _ => Err(unrecorded()),
    }
}

pub(super) fn join_by_email(request: proto::JoinByEmailRequest) -> Result<JoinByEmail, Error> {
    let proto::JoinByEmailRequest {
        email,
        display_name,
        message,
    } = request;
    let (email, display_name, message) = address_with_introduction(email, display_name, message)?;
    Ok(JoinByEmail {
        email,
        display_name,
        message,
    })
}

#[tonic::async_trait]
impl JoinService for JoinServiceImpl {
    async fn create_invite_link(
        &self,
        request: Request<proto::CreateInviteLinkRequest>,
    ) -> Result<Response<proto::CreateInviteLinkResponse>, Status> {
        let request_id = request_id(&request);
        let caller = authenticated(&self.state, &request).await?;
        let new = new_link(request.into_inner())?;
        let created =
            operations::invite_links::create(&self.state, &caller, &request_id, new).await?;
        Ok(Response::new(proto::CreateInviteLinkResponse {
            link: Some(wire::invite_link(&created.link)),
            secret: created.secret,
        }))
    }

    async fn list_invite_links(
        &self,
        request: Request<proto::ListInviteLinksRequest>,
    ) -> Result<Response<proto::ListInviteLinksResponse>, Status> {
        let caller = authenticated(&self.state, &request).await?;
        let proto::ListInviteLinksRequest {
            page_size,
            page_token,
            state,
        } = request.into_inner();
        let filter = link_state(state)?;
        let page = convert::list_page(page_size, page_token)?;
        let page = operations::invite_links::READS
            .list(&self.state, &caller, filter, page)
            .await?;
        let (links, next_page_token, total_size) = convert::listed(page, wire::invite_link);
        Ok(Response::new(proto::ListInviteLinksResponse {
            links,
            next_page_token,
            total_size,
        }))
    }

    async fn get_invite_link(
        &self,
        request: Request<proto::GetInviteLinkRequest>,
    ) -> Result<Response<proto::GetInviteLinkResponse>, Status> {
        let caller = authenticated(&self.state, &request).await?;
        let proto::GetInviteLinkRequest { link_id } = request.into_inner();
        let link_id = id_field("link_id", &link_id)?;
        let link = operations::invite_links::READS
            .get(&self.state, &caller, link_id)
            .await?;
        Ok(Response::new(proto::GetInviteLinkResponse {
            link: Some(wire::invite_link(&link)),
        }))
    }

    async fn revoke_invite_link(
        &self,
        request: Request<proto::RevokeInviteLinkRequest>,
    ) -> Result<Response<proto::RevokeInviteLinkResponse>, Status> {
        let request_id = request_id(&request);
        let caller = authenticated(&self.state, &request).await?;
        let proto::RevokeInviteLinkRequest { link_id } = request.into_inner();
        let link_id = id_field("link_id", &link_id)?;
        let link =
            operations::invite_links::revoke(&self.state, &caller, &request_id, link_id).await?;
        Ok(Response::new(proto::RevokeInviteLinkResponse {
            link: Some(wire::invite_link(&link)),
        }))
    }

    async fn rotate_invite_link(
        &self,
        request: Request<proto::RotateInviteLinkRequest>,
    ) -> Result<Response<proto::RotateInviteLinkResponse>, Status> {
        let request_id = request_id(&request);
        let caller = authenticated(&self.state, &request).await?;
        let proto::RotateInviteLinkRequest { link_id } = request.into_inner();
        let link_id = id_field("link_id", &link_id)?;
        let rotated =
            operations::invite_links::rotate(&self.state, &caller, &request_id, link_id).await?;
        Ok(Response::new(proto::RotateInviteLinkResponse {
            link: Some(wire::invite_link(&rotated.link)),
            secret: rotated.secret,
        }))
    }

    async fn preview_invite_link(
        &self,
        request: Request<proto::PreviewInviteLinkRequest>,
    ) -> Result<Response<proto::PreviewInviteLinkResponse>, Status> {
        let client = client_address(&request, &self.state.sign_in);
        let proto::PreviewInviteLinkRequest { secret } = request.into_inner();
        let preview =
            operations::invite_links::preview(&self.state, LinkSecret::parse(&secret), client)
                .await?;
        Ok(Response::new(proto::PreviewInviteLinkResponse {
            workspace_name: preview.workspace_name,
            role: preview.link.role,
            creator_display_name: preview.creator_display_name,
            requires_approval: preview.link.requires_approval,
            expire_time: Some(wire::timestamp(preview.link.expires_at)),
        }))
    }

    async fn redeem_invite_link(
        &self,
        request: Request<proto::RedeemInviteLinkRequest>,
    ) -> Result<Response<proto::RedeemInviteLinkResponse>, Status> {
        let request_id = request_id(&request);
        let client = client_address(&request, &self.state.sign_in);
        let redemption = redemption(request.into_inner())?;
        let requires_approval =
            operations::invite_links::redeem(&self.state, &request_id, redemption, client).await?;
        Ok(Response::new(proto::RedeemInviteLinkResponse {
            requires_approval,
        }))
    }

    async fn create_join_request(
        &self,
        request: Request<proto::CreateJoinRequestRequest>,
    ) -> Result<Response<proto::CreateJoinRequestResponse>, Status> {
        let request_id = request_id(&request);
        let client = client_address(&request, &self.state.sign_in);
        let new = new_join_request(request.into_inner())?;
        operations::join_requests::create(&self.state, &request_id, new, client).await?;
        Ok(Response::new(proto::CreateJoinRequestResponse {}))
    }

    async fn confirm_join_request(
        &self,
        request: Request<proto::ConfirmJoinRequestRequest>,
    ) -> Result<Response<proto::ConfirmJoinRequestResponse>, Status> {
        let request_id = request_id(&request);
        let client = client_address(&request, &self.state.sign_in);
        let proto::ConfirmJoinRequestRequest { token } = request.into_inner();
        let workspace_name = operations::join_requests::confirm(
            &self.state,
            &request_id,
            InvitationToken::parse(&token),
            client,
        )
        .await?;
        Ok(Response::new(proto::ConfirmJoinRequestResponse {
            workspace_name,
        }))
    }

    async fn list_join_requests(
        &self,
        request: Request<proto::ListJoinRequestsRequest>,
    ) -> Result<Response<proto::ListJoinRequestsResponse>, Status> {
        let caller = authenticated(&self.state, &request).await?;
        let proto::ListJoinRequestsRequest {
            page_size,
            page_token,
            state,
        } = request.into_inner();
        let filter = request_state(state)?;
        let page = convert::list_page(page_size, page_token)?;
        let page = operations::join_requests::READS
            .list(&self.state, &caller, filter, page)
            .await?;
        let (join_requests, next_page_token, total_size) =
            convert::listed(page, wire::join_request);
        Ok(Response::new(proto::ListJoinRequestsResponse {
            join_requests,
            next_page_token,
            total_size,
        }))
    }

    async fn get_join_request(
        &self,
        request: Request<proto::GetJoinRequestRequest>,
    ) -> Result<Response<proto::GetJoinRequestResponse>, Status> {
        let caller = authenticated(&self.state, &request).await?;
        let proto::GetJoinRequestRequest { join_request_id } = request.into_inner();
        let join_request_id = id_field("join_request_id", &join_request_id)?;
        let found = operations::join_requests::READS
            .get(&self.state, &caller, join_request_id)
            .await?;
        Ok(Response::new(proto::GetJoinRequestResponse {
            join_request: Some(wire::join_request(&found)),
        }))
    }

    async fn approve_join_request(
        &self,
        request: Request<proto::ApproveJoinRequestRequest>,
    ) -> Result<Response<proto::ApproveJoinRequestResponse>, Status> {
        let request_id = request_id(&request);
        let caller = authenticated(&self.state, &request).await?;
        let approval = approval(request.into_inner())?;
        let (decided, invitation) =
            operations::join_requests::approve(&self.state, &caller, &request_id, approval).await?;
        Ok(Response::new(proto::ApproveJoinRequestResponse {
            join_request: Some(wire::join_request(&decided)),
            invitation: Some(wire::invitation(&invitation)),
        }))
    }

    async fn deny_join_request(
        &self,
        request: Request<proto::DenyJoinRequestRequest>,
    ) -> Result<Response<proto::DenyJoinRequestResponse>, Status> {
        let request_id = request_id(&request);
        let caller = authenticated(&self.state, &request).await?;
        let denial = denial(request.into_inner())?;
        let decided =
            operations::join_requests::deny(&self.state, &caller, &request_id, denial).await?;
        Ok(Response::new(proto::DenyJoinRequestResponse {
            join_request: Some(wire::join_request(&decided)),
        }))
    }

    async fn add_domain(
        &self,
        request: Request<proto::AddDomainRequest>,
    ) -> Result<Response<proto::AddDomainResponse>, Status> {
        let request_id = request_id(&request);
        let caller = authenticated(&self.state, &request).await?;
        let proto::AddDomainRequest { domain } = request.into_inner();
        let domain = parse_domain_name(&domain).map_err(|why| Error::invalid("domain", why))?;
        let claimed =
            operations::mail_domains::add(&self.state, &caller, &request_id, domain).await?;
        Ok(Response::new(proto::AddDomainResponse {
            domain: Some(wire::mail_domain(&claimed)),
        }))
    }

    async fn list_domains(
        &self,
        request: Request<proto::ListDomainsRequest>,
    ) -> Result<Response<proto::ListDomainsResponse>, Status> {
        let caller = authenticated(&self.state, &request).await?;
        let proto::ListDomainsRequest {
            page_size,
            page_token,
        } = request.into_inner();
        let page = convert::list_page(page_size, page_token)?;
        let page = operations::mail_domains::list(&self.state, &caller, page).await?;
        let (domains, next_page_token, total_size) = convert::listed(page, wire::mail_domain);
        Ok(Response::new(proto::ListDomainsResponse {
            domains,
            next_page_token,
            total_size,
        }))
    }

    async fn get_domain(
        &self,
        request: Request<proto::GetDomainRequest>,
    ) -> Result<Response<proto::GetDomainResponse>, Status> {
        let caller = authenticated(&self.state, &request).await?;
        let proto::GetDomainRequest { domain_id } = request.into_inner();
        let domain_id = id_field("domain_id", &domain_id)?;
        let found = operations::mail_domains::get(&self.state, &caller, domain_id).await?;
        Ok(Response::new(proto::GetDomainResponse {
            domain: Some(wire::mail_domain(&found)),
        }))
    }

    async fn verify_domain(
        &self,
        request: Request<proto::VerifyDomainRequest>,
    ) -> Result<Response<proto::VerifyDomainResponse>, Status> {
        let request_id = request_id(&request);
        let caller = authenticated(&self.state, &request).await?;
        let proto::VerifyDomainRequest { domain_id } = request.into_inner();
        let domain_id = id_field("domain_id", &domain_id)?;
        let verified =
            operations::mail_domains::verify(&self.state, &caller, &request_id, domain_id).await?;
        Ok(Response::new(proto::VerifyDomainResponse {
            domain: Some(wire::mail_domain(&verified)),
        }))
    }

    async fn update_domain(
        &self,
        request: Request<proto::UpdateDomainRequest>,
    ) -> Result<Response<proto::UpdateDomainResponse>, Status> {
        let request_id = request_id(&request);
        let caller = authenticated(&self.state, &request).await?;
        let update = domain_update(request.into_inner())?;
        let updated =
            operations::mail_domains::update(&self.state, &caller, &request_id, update).await?;
        Ok(Response::new(proto::UpdateDomainResponse {
            domain: Some(wire::mail_domain(&updated)),
        }))
    }

    async fn remove_domain(
        &self,
        request: Request<proto::RemoveDomainRequest>,
    ) -> Result<Response<proto::RemoveDomainResponse>, Status> {
        let request_id = request_id(&request);
        let caller = authenticated(&self.state, &request).await?;
        let proto::RemoveDomainRequest { domain_id } = request.into_inner();
        let domain_id = id_field("domain_id", &domain_id)?;
        let removed =
            operations::mail_domains::remove(&self.state, &caller, &request_id, domain_id).await?;
        Ok(Response::new(proto::RemoveDomainResponse {
            domain: Some(wire::mail_domain(&removed)),
        }))
    }

    async fn join_by_email(
        &self,
        request: Request<proto::JoinByEmailRequest>,
    ) -> Result<Response<proto::JoinByEmailResponse>, Status> {
        let request_id = request_id(&request);
        let client = client_address(&request, &self.state.sign_in);
        let join = join_by_email(request.into_inner())?;
        operations::mail_domains::join_by_email(&self.state, &request_id, join, client).await?;
        Ok(Response::new(proto::JoinByEmailResponse {}))
    }
}
