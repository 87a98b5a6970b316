//! `AuthService`: signing in. No bearer token: the password is the credential.

use std::{net::IpAddr, sync::Arc};

use tonic::{Request, Response, Status};
use wowchat_users_api::v1::{self as proto, auth_service_server::AuthService};

use super::{convert, request_id};
use crate::{
    operations::{self, AppState, sign_in::SignInPolicy},
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

/// Where the request comes from: the TCP peer, or, behind `hops` trusted
/// proxies that each append the address they saw to `x-forwarded-for`, the
/// entry `hops` places from the right of (entries…, peer). Everything further
/// left was written by the caller and is never believed.
/// A call through the REST gateway comes from the client the gateway vouched
/// for (see `gateway`), whatever the settings above say.
pub(super) fn client_address<T>(request: &Request<T>, policy: &SignInPolicy) -> Option<IpAddr> {
    if let Some(super::gateway::GatewayClient(address)) = request.extensions().get() {
        return Some(*address);
    }
    let peer = request.remote_addr().map(|peer| peer.ip());
    let hops = policy.trusted_proxy_hops;
    if !policy.trust_forwarded_for || hops == 0 {
        return peer;
    }
    // Several headers read as one list, in order.
    let entries: Vec<&str> = request
        .metadata()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    forwarded_client(&entries, peer, hops)
}

/// The client among `entries` (the `x-forwarded-for` list) followed by
/// `peer`, `hops` places from the right; the leftmost when the chain is
/// shorter. An entry a trusted proxy wrote that is no address gives the peer.
fn forwarded_client(entries: &[&str], peer: Option<IpAddr>, hops: u32) -> Option<IpAddr> {
    let hops = usize::try_from(hops).unwrap_or(usize::MAX);
    // `hops - 1` entries from the right, the peer being the first hop.
    let from_right = hops.saturating_sub(1);
    let Some(index) = entries.len().checked_sub(from_right + 1) else {
        return entries
            .first()
            .and_then(|entry| parse_entry(entry))
            .or(peer);
    };
    entries
        .get(index)
        .and_then(|entry| parse_entry(entry))
        .or(peer)
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, or with a
/// port (`192.0.2.1:443`, `[2001:db8::1]:443`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

#[tonic::async_trait]
impl AuthService for AuthServiceImpl {
    #[tracing::instrument(skip_all)]
    async fn sign_in(
        &self,
        request: Request<proto::SignInRequest>,
    ) -> Result<Response<proto::SignInResponse>, Status> {
        let request_id = request_id(&request);
        let client = client_address(&request, &self.state.sign_in);
        let sign_in = convert::sign_in(request.into_inner(), client)?;
        let signed_in = operations::sign_in::sign_in(&self.state, &request_id, sign_in).await?;
        Ok(Response::new(proto::SignInResponse {
            access_token: signed_in.access_token,
            token_type: "Bearer".into(),
            expire_time: Some(wire::timestamp(signed_in.expires_at)),
            user: Some(wire::user(&signed_in.user)),
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<proto::GetJwksRequest>,
    ) -> Result<Response<proto::GetJwksResponse>, Status> {
        let keys = self
            .state
            .keys
            .jwks()
            .iter()
            .map(wire::json_web_key)
            .collect();
        Ok(Response::new(proto::GetJwksResponse { keys }))
    }

    #[tracing::instrument(skip_all)]
    async fn sign_out(
        &self,
        request: Request<proto::SignOutRequest>,
    ) -> Result<Response<proto::SignOutResponse>, Status> {
        let request_id = request_id(&request);
        let caller = super::authenticated(&self.state, &request).await?;
        let ended = operations::sign_in::sign_out(&self.state, &caller, &request_id).await?;
        Ok(Response::new(proto::SignOutResponse {
            sessions_ended_time: Some(wire::timestamp(ended)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    #[test]
    fn the_client_is_taken_from_the_right_past_the_trusted_proxies() {
        let peer = ip("10.0.0.9");
        // One proxy (the peer): it appended the client it saw last.
        let entries = ["198.51.100.66", "203.0.113.7"];
        assert_eq!(forwarded_client(&entries, peer, 1), ip("203.0.113.7"));
        // Two proxies: the nearest appended the farther one's address.
        let entries = ["198.51.100.66", "203.0.113.7", "10.0.0.1"];
        assert_eq!(forwarded_client(&entries, peer, 2), ip("203.0.113.7"));
        // Ports and IPv6 as proxies write them.
        assert_eq!(
            forwarded_client(&["[2001:db8::1]:443"], peer, 1),
            ip("2001:db8::1")
        );
        assert_eq!(
            forwarded_client(&["192.0.2.1:80"], peer, 1),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn a_short_or_broken_chain_never_yields_an_address_the_caller_chose() {
        let peer = ip("10.0.0.9");
        // No header: the peer.
        assert_eq!(forwarded_client(&[], peer, 1), peer);
        // Fewer entries than proxies: the leftmost, which a proxy wrote.
        assert_eq!(
            forwarded_client(&["203.0.113.7"], peer, 3),
            ip("203.0.113.7")
        );
        // The proxy's entry is garbage: the peer, not the caller's entry.
        assert_eq!(
            forwarded_client(&["198.51.100.66", "garbage"], peer, 1),
            peer
        );
    }
}
