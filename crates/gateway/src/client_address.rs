//! Who the client is: the TCP peer, unless a trusted hop in front of the
//! gateway says otherwise. As nginx's `real_ip` module with
//! `real_ip_recursive on`: the forwarded list is read from the right, each
//! trusted proxy is skipped, and the first address that is not a trusted
//! proxy is the client. Nothing an untrusted peer sends is believed.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, HeaderName, request::Parts},
};
use ipnet::IpNet;

use crate::Shared;

/// The client of a request, as [`TrustedProxies::client`] reads it from the
/// TCP peer and the headers: the one extractor every handler that needs the
/// client's address (its attempt budgets) takes.
pub(crate) struct ClientAddress(pub(crate) IpAddr);

impl FromRequestParts<Arc<Shared>> for ClientAddress {
    type Rejection = <ConnectInfo<SocketAddr> as FromRequestParts<Arc<Shared>>>::Rejection;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let ConnectInfo(peer) =
            ConnectInfo::<SocketAddr>::from_request_parts(parts, shared).await?;
        Ok(ClientAddress(
            shared.trusted_proxies.client(peer.ip(), &parts.headers),
        ))
    }
}

/// The header a trusted proxy in front of the gateway writes the client into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, haproxy `option
    /// forwardfor`, most cloud load balancers and ingress controllers).
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for="[2001:db8::1]:4711"`.
    Forwarded,
}

impl ForwardedHeader {
    fn name(self) -> HeaderName {
        match self {
            ForwardedHeader::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
            ForwardedHeader::Forwarded => HeaderName::from_static("forwarded"),
        }
    }
}

/// The proxies whose word on the client's address is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    header: Option<ForwardedHeader>,
}

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>, header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies {
            networks,
            header: Some(header),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.networks.iter().any(|net| net.contains(&address))
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted proxy,
    /// else the rightmost forwarded address that is not one (or the leftmost
    /// when every hop is trusted). A malformed entry stops the walk at the
    /// last address known good, as nginx does.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        let Some(header) = self.header else {
            return peer;
        };
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        // Several header lines are one list, in order (RFC 9110 §5.3).
        let lines: Vec<&str> = headers
            .get_all(header.name())
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        for entry in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
            let parsed = match header {
                ForwardedHeader::XForwardedFor => parse_address(entry.trim()),
                ForwardedHeader::Forwarded => forwarded_for(entry),
            };
            let Some(address) = parsed else {
                break;
            };
            client = canonical(address);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:10.0.0.1`, as a dual-stack
/// socket reports an IPv4 peer) is the IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_address(text: &str) -> Option<IpAddr> {
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(socket) = text.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    let bracketed = text.strip_prefix('[')?;
    bracketed.split(']').next()?.parse().ok()
}

/// The `for=` parameter of one RFC 7239 element (`for=192.0.2.60;proto=http`).
/// An obfuscated or `unknown` node is no address.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        parse_address(value.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn proxies(networks: &[&str], header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies::new(
            networks.iter().map(|n| n.parse().unwrap()).collect(),
            header,
        )
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let forged = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(
            trusted.client(ip("198.51.100.7"), &forged),
            ip("198.51.100.7")
        );
        let nobody = TrustedProxies::default();
        assert_eq!(nobody.client(ip("10.0.0.1"), &forged), ip("10.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(
            &["10.0.0.0/8", "127.0.0.1/32"],
            ForwardedHeader::XForwardedFor,
        );
        // The client forged the first entry; the proxy appended the real one.
        let chain = headers(
            "x-forwarded-for",
            &["203.0.113.9, 198.51.100.7", "10.1.2.3"],
        );
        assert_eq!(trusted.client(ip("127.0.0.1"), &chain), ip("198.51.100.7"));
    }

    #[test]
    fn every_hop_trusted_leaves_the_leftmost() {
        let trusted = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let chain = headers("x-forwarded-for", &["10.9.9.9, 10.1.1.1"]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &chain), ip("10.9.9.9"));
    }

    #[test]
    fn a_malformed_entry_stops_at_the_last_good_address() {
        let trusted = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let chain = headers("x-forwarded-for", &["198.51.100.7, garbage, 10.1.1.1"]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &chain), ip("10.1.1.1"));
        let absent = HeaderMap::new();
        assert_eq!(trusted.client(ip("10.0.0.1"), &absent), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_elements_with_ports_brackets_and_quotes() {
        let trusted = proxies(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        let chain = headers(
            "forwarded",
            &[r#"for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2"#],
        );
        assert_eq!(
            trusted.client(ip("10.0.0.1"), &chain),
            ip("2001:db8:cafe::17")
        );
        // The other header is not read when this one is configured.
        let other = headers("x-forwarded-for", &["192.0.2.43"]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &other), ip("10.0.0.1"));
        let obfuscated = headers("forwarded", &["for=_hidden, for=unknown"]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &obfuscated), ip("10.0.0.1"));
    }

    #[test]
    fn mapped_ipv4_peers_match_ipv4_networks() {
        let trusted = proxies(&["127.0.0.1/32"], ForwardedHeader::XForwardedFor);
        let chain = headers("x-forwarded-for", &["127.0.0.2"]);
        assert_eq!(
            trusted.client(ip("::ffff:127.0.0.1"), &chain),
            ip("127.0.0.2")
        );
    }
}
