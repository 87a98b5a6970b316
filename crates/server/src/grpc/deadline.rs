//! The request deadline: a call that has not answered within
//! `WOWCHAT_REQUEST_TIMEOUT_SECS` is ended with UNAVAILABLE
//! (`SERVICE_UNAVAILABLE`), which a client retries, rather than tonic's
//! CANCELLED. A call runs that long only when something it waits on (a
//! Postgres path gone silent, a pool with no connection to give, a lock
//! held by a stuck peer) does not answer; the caller is told to try again,
//! and its request id makes the retry safe. The deadline is on the answer's
//! headers: a stream (health's Watch, reflection) runs on after them.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tonic::{Status, codegen::http};
use tower_layer::Layer;
use tower_service::Service;

use crate::domain::Error;

#[derive(Clone)]
pub struct DeadlineLayer {
    limit: Duration,
}

impl DeadlineLayer {
    pub fn new(limit: Duration) -> Self {
        DeadlineLayer { limit }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            limit: self.limit,
        }
    }
}

#[derive(Clone)]
pub struct Deadline<S> {
    inner: S,
    limit: Duration,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Deadline<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let response = self.inner.call(request);
        let limit = self.limit;
        Box::pin(async move {
            match tokio::time::timeout(limit, response).await {
                Ok(response) => response,
                Err(_) => {
                    metrics::counter!("wowchat_requests_timed_out_total").increment(1);
                    tracing::warn!(%method, ?limit, "no answer within the request timeout");
                    let status = Status::from(Error::Unavailable(anyhow::anyhow!(
                        "{method} did not answer within {limit:?}"
                    )));
                    Ok(status.into_http())
                }
            }
        })
    }
}
