//! Trusting the REST gateway, and only it, with the client's address: a
//! call carrying the shared gateway key (`WOWCHAT_GATEWAY_KEY`) may name the
//! address of the gateway's own client, which the sign-in and invitation
//! attempt limits then count; any other call's claim is ignored. Both
//! headers are removed on arrival, so nothing further in (logs included)
//! sees the key.

use std::{
    net::IpAddr,
    task::{Context, Poll},
};

use sha2::{Digest, Sha256};
use tonic::codegen::http;
use tower_layer::Layer;
use tower_service::Service;
use wowchat_gateway::{CLIENT_ADDRESS_HEADER, GATEWAY_KEY_HEADER};

/// The client address the gateway vouched for, as a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayClient(pub IpAddr);

#[derive(Clone)]
pub struct TrustGatewayLayer {
    /// SHA-256 of the key: comparing digests takes the same time whatever
    /// prefix of the key a guess gets right.
    key_digest: Option<[u8; 32]>,
}

impl TrustGatewayLayer {
    pub fn new(key: Option<&str>) -> Self {
        TrustGatewayLayer {
            key_digest: key
                .filter(|key| !key.is_empty())
                .map(|key| Sha256::digest(key.as_bytes()).into()),
        }
    }
}

impl<S> Layer<S> for TrustGatewayLayer {
    type Service = TrustGateway<S>;

    fn layer(&self, inner: S) -> TrustGateway<S> {
        TrustGateway {
            inner,
            key_digest: self.key_digest,
        }
    }
}

#[derive(Clone)]
pub struct TrustGateway<S> {
    inner: S,
    key_digest: Option<[u8; 32]>,
}

impl<S, ReqBody> Service<http::Request<ReqBody>> for TrustGateway<S>
where
    S: Service<http::Request<ReqBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let headers = request.headers_mut();
        let key = headers.remove(GATEWAY_KEY_HEADER);
        let address = headers.remove(CLIENT_ADDRESS_HEADER);
        let right_key = match (self.key_digest, &key) {
            (Some(expected), Some(key)) => {
                let right = <[u8; 32]>::from(Sha256::digest(key.as_bytes())) == expected;
                if !right {
                    wrong_key();
                }
                right
            }
            // A key sent to a service without one is as wrong as a bad one.
            (None, Some(_)) => {
                wrong_key();
                false
            }
            (_, None) => false,
        };
        // A wrong key is answered exactly as no key: the claim is ignored.
        let vouched = address
            .filter(|_| right_key)
            .and_then(|address| address.to_str().ok()?.trim().parse::<IpAddr>().ok());
        if let Some(address) = vouched {
            request.extensions_mut().insert(GatewayClient(address));
        }
        self.inner.call(request)
    }
}

/// Counts a call with a wrong gateway key and says so in the log, at most
/// once a minute per replica (a flood of guesses is one line a minute).
fn wrong_key() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST_LOGGED: AtomicU64 = AtomicU64::new(0);
    metrics::counter!("wowchat_gateway_key_mismatches_total").increment(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let last = LAST_LOGGED.load(Ordering::Relaxed);
    if now >= last + 60
        && LAST_LOGGED
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            "a call carried a wrong gateway key (counted in wowchat_gateway_key_mismatches_total; \
             its claimed client address is ignored)"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    /// What the inner service saw: the vouched address and whether the key reached it.
    async fn seen(
        layer: &TrustGatewayLayer,
        headers: &[(&'static str, &str)],
    ) -> (Option<GatewayClient>, bool) {
        let inner = tower_service_fn(|request: http::Request<()>| {
            (
                request.extensions().get::<GatewayClient>().copied(),
                request.headers().contains_key(GATEWAY_KEY_HEADER)
                    || request.headers().contains_key(CLIENT_ADDRESS_HEADER),
            )
        });
        let mut service = layer.layer(inner);
        let mut request = http::Request::new(());
        for &(name, value) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_static(name),
                http::HeaderValue::from_str(value).unwrap_or(http::HeaderValue::from_static("")),
            );
        }
        match service.call(request).await {
            Ok(seen) => seen,
            Err(never) => match never {},
        }
    }

    fn tower_service_fn<F, T>(f: F) -> ServiceFn<F>
    where
        F: FnMut(http::Request<()>) -> T,
    {
        ServiceFn(f)
    }

    #[derive(Clone)]
    struct ServiceFn<F>(F);

    impl<F, T> Service<http::Request<()>> for ServiceFn<F>
    where
        F: FnMut(http::Request<()>) -> T,
    {
        type Response = T;
        type Error = Infallible;
        type Future = std::future::Ready<Result<T, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<()>) -> Self::Future {
            std::future::ready(Ok((self.0)(request)))
        }
    }

    #[tokio::test]
    async fn only_the_right_key_makes_the_address_believed() {
        let layer = TrustGatewayLayer::new(Some("s3cret"));
        let address = ("x-wowchat-client-address", "203.0.113.7");
        assert_eq!(
            seen(&layer, &[("x-wowchat-gateway-key", "s3cret"), address]).await,
            (
                Some(GatewayClient(
                    "203.0.113.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
                )),
                false
            )
        );
        assert_eq!(
            seen(&layer, &[("x-wowchat-gateway-key", "guess"), address]).await,
            (None, false)
        );
        assert_eq!(seen(&layer, &[address]).await, (None, false));
        let untrusting = TrustGatewayLayer::new(None);
        assert_eq!(
            seen(&untrusting, &[("x-wowchat-gateway-key", "s3cret"), address]).await,
            (None, false)
        );
    }
}
