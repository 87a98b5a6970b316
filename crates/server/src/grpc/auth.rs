//! `AuthService`: signing in. No bearer token: the password is the credential.

use std::{net::IpAddr, sync::Arc};

use tonic::{Request, Response, Status};
use wowchat_users_api::v1::{self as proto, auth_service_server::AuthService};

use super::{convert, request_id};
use crate::{
    operations::{self, AppState},
    wire,
};

pub struct AuthServiceImpl {
    state: Arc<AppState>,
}

impl AuthServiceImpl {
    pub fn new(state: Arc<AppState>) -> Self {
        AuthServiceImpl { state }
    }
}

/// Where the request comes from: the peer address, or, behind a trusted
/// proxy, the first `x-forwarded-for` entry (the client the proxy saw).
pub(super) fn client_address<T>(request: &Request<T>, trust_forwarded_for: bool) -> Option<IpAddr> {
    let forwarded = trust_forwarded_for
        .then(|| request.metadata().get("x-forwarded-for"))
        .flatten()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .and_then(|first| first.trim().parse::<IpAddr>().ok());
    forwarded.or_else(|| request.remote_addr().map(|peer| peer.ip()))
}

#[tonic::async_trait]
impl AuthService for AuthServiceImpl {
    #[tracing::instrument(skip_all)]
    async fn sign_in(
        &self,
        request: Request<proto::SignInRequest>,
    ) -> Result<Response<proto::SignInResponse>, Status> {
        let request_id = request_id(&request);
        let client = client_address(&request, self.state.sign_in.trust_forwarded_for);
        let sign_in = convert::sign_in(request.into_inner(), client)?;
        let signed_in = operations::sign_in::sign_in(&self.state, &request_id, sign_in).await?;
        Ok(Response::new(proto::SignInResponse {
            access_token: signed_in.access_token,
            token_type: "Bearer".into(),
            expire_time: Some(wire::timestamp(signed_in.expires_at)),
            user: Some(wire::user(&signed_in.user)),
        }))
    }
}
