//! What a call may hold of this replica: a place among the calls handled at
//! once, and time.
//!
//! Load shedding: at most a fixed number of calls are handled at once by this
//! replica; one over that is refused at once with RESOURCE_EXHAUSTED
//! (`SERVER_OVERLOADED`, with RetryInfo) instead of waiting in a queue that
//! grows with the flood. Health checks are never counted nor refused, so a
//! flood cannot make a replica look dead.
//!
//! The deadline: a call that has not answered within
//! `WOWCHAT_REQUEST_TIMEOUT_SECS` is ended with UNAVAILABLE
//! (`SERVICE_UNAVAILABLE`), which a client retries, rather than tonic's
//! CANCELLED, and gives its place back. A call runs that long only when
//! something it waits on (a Postgres path gone silent, a pool with no
//! connection to give, a lock held by a stuck peer) does not answer; its
//! request id makes the retry safe. The deadline is on the answer's
//! headers: a stream (health's Watch, reflection) runs on after them.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Status, codegen::http};
use tower_layer::Layer;
use tower_service::Service;

use crate::domain::{Error, Reason};

/// The path prefix of the standard health service, which is never shed.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

/// How long a refused caller is told to wait.
const RETRY_AFTER: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct ShedLayer {
    permits: Arc<Semaphore>,
    deadline: Duration,
}

impl ShedLayer {
    /// At most `limit` calls at once (at least one), each answering within
    /// `deadline`.
    pub fn new(limit: usize, deadline: Duration) -> Self {
        ShedLayer {
            permits: Arc::new(Semaphore::new(limit.clamp(1, Semaphore::MAX_PERMITS))),
            deadline,
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Shed<S> {
        Shed {
            inner,
            permits: self.permits.clone(),
            deadline: self.deadline,
        }
    }
}

#[derive(Clone)]
pub struct Shed<S> {
    inner: S,
    permits: Arc<Semaphore>,
    deadline: Duration,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Shed<S>
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
        let permit: Option<OwnedSemaphorePermit> =
            if request.uri().path().starts_with(HEALTH_PREFIX) {
                None
            } else {
                match self.permits.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        metrics::counter!("wowchat_requests_shed_total").increment(1);
                        let status = Status::from(Error::rate_limited(
                            Reason::ServerOverloaded,
                            "the server is overloaded; retry later",
                            RETRY_AFTER,
                        ));
                        return Box::pin(async move { Ok(status.into_http()) });
                    }
                }
            };
        let response = self.inner.call(request);
        let deadline = self.deadline;
        Box::pin(async move {
            let response = match tokio::time::timeout(deadline, response).await {
                Ok(response) => response,
                Err(_) => {
                    metrics::counter!("wowchat_requests_timed_out_total").increment(1);
                    // The call's span (the trace layer, outside) names the method.
                    tracing::warn!(?deadline, "no answer within the request timeout");
                    let status = Status::from(Error::Unavailable(anyhow::anyhow!(
                        "the call did not answer within {deadline:?}"
                    )));
                    Ok(status.into_http())
                }
            };
            // Held until the handler has answered or its time is up.
            drop(permit);
            response
        })
    }
}
