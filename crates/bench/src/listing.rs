//! What the paged-listing scenarios (`list`: ListUsers, `activity`:
//! ListActivity) share: the calls in flight, the target, a caller that
//! lists with one request after another, following page tokens to a deep
//! page, and measuring each listing in turn. A listing is one RPC with a
//! `page_token` in and a `next_page_token` out, so one generic serves both.

use std::{future::Future, sync::Arc};

use anyhow::{Context, ensure};
use tonic::transport::Channel;
use wowchat_users_api::v1::{
    ListActivityRequest, ListUsersRequest, user_service_client::UserServiceClient,
};

use crate::{
    Common,
    load::{self, Bearer, Caller},
    report::{Measurement, Target},
    service::{self, Service, Workspace},
};

pub const IN_FLIGHT: usize = 8;

/// Issue 7, target 5 (ListUsers) and issue 25, §4 (ListActivity): p99 at
/// most 10 ms.
pub const TARGET: Target = Target {
    min_ratio: None,
    max_ratio: None,
    min_throughput: None,
    max_p99: Some(std::time::Duration::from_millis(10)),
};

/// How many rows a scenario lists: `given`, else `quick` with --quick and
/// `full` without; and the deepest page such a listing has at the default
/// page size of 50, up to the 1,000th.
pub fn rows(given: Option<i64>, common: &Common, quick: i64, full: i64) -> (i64, usize) {
    let rows = given.unwrap_or(if common.quick { quick } else { full });
    (rows, (rows / 50).clamp(1, 1000) as usize)
}

/// A request of one paged listing RPC.
pub trait Listing: Clone + Send + Sync + 'static {
    /// The RPC's name, for errors and progress lines.
    const RPC: &'static str;

    /// The same request, asking for the page of `page_token`.
    fn at(self, page_token: String) -> Self;

    /// Calls the RPC; the answer's `next_page_token`.
    fn call(
        client: UserServiceClient<Channel>,
        request: tonic::Request<Self>,
    ) -> impl Future<Output = Result<String, tonic::Status>> + Send;
}

impl Listing for ListUsersRequest {
    const RPC: &'static str = "ListUsers";

    fn at(self, page_token: String) -> Self {
        ListUsersRequest { page_token, ..self }
    }

    async fn call(
        mut client: UserServiceClient<Channel>,
        request: tonic::Request<Self>,
    ) -> Result<String, tonic::Status> {
        Ok(client
            .list_users(request)
            .await?
            .into_inner()
            .next_page_token)
    }
}

impl Listing for ListActivityRequest {
    const RPC: &'static str = "ListActivity";

    fn at(self, page_token: String) -> Self {
        ListActivityRequest { page_token, ..self }
    }

    async fn call(
        mut client: UserServiceClient<Channel>,
        request: tonic::Request<Self>,
    ) -> Result<String, tonic::Status> {
        Ok(client
            .list_activity(request)
            .await?
            .into_inner()
            .next_page_token)
    }
}

/// Each call lists with one of `requests`, in turn.
pub fn list_call<R: Listing>(bearer: &Bearer, requests: Vec<R>) -> impl Caller {
    let (bearer, requests) = (bearer.clone(), Arc::new(requests));
    move |channel, n| {
        let request = bearer.request(requests[n as usize % requests.len()].clone());
        Box::pin(async move {
            R::call(UserServiceClient::new(channel), request)
                .await
                .context(R::RPC)?;
            Ok(())
        })
    }
}

/// The request for page `number` of `request`'s listing, reached by
/// following the tokens of the pages before it.
pub async fn page<R: Listing>(
    channel: &Channel,
    bearer: &Bearer,
    request: R,
    number: usize,
) -> anyhow::Result<R> {
    let mut page_token = String::new();
    for _ in 1..number {
        let client = UserServiceClient::new(channel.clone());
        page_token = R::call(client, bearer.request(request.clone().at(page_token)))
            .await
            .with_context(|| format!("{}, following the pages", R::RPC))?;
        ensure!(!page_token.is_empty(), "the listing has {number} pages");
    }
    Ok(request.at(page_token))
}

/// A listing scenario: on a service of its own, a workspace named `name`
/// that `seed` fills, then the listings `listings` makes of what `seed`
/// returned (following page tokens over the connection it is given, as
/// the owner) measured one after another.
pub async fn scenario<R: Listing, S>(
    common: &Common,
    name: &str,
    seed: impl AsyncFnOnce(&Service, &Workspace) -> anyhow::Result<S>,
    listings: impl AsyncFnOnce(S, &Channel, &Bearer) -> anyhow::Result<Vec<(String, Vec<R>)>>,
) -> anyhow::Result<Vec<Measurement>> {
    service::with_service(common, &[], async move |_, service| {
        let workspace = service.workspace(name).await?;
        let seeded = seed(service, &workspace).await?;
        let channels = load::connect(&service.address).await?;
        let listings = listings(seeded, &channels[0], &workspace.owner).await?;
        measure(common, &channels, &workspace.owner, listings).await
    })
    .await
}

/// Measures each of `listings`, (name, the requests its calls take in
/// turn), with [`IN_FLIGHT`] calls in flight over `channels`.
async fn measure<R: Listing>(
    common: &Common,
    channels: &[Channel],
    bearer: &Bearer,
    listings: Vec<(String, Vec<R>)>,
) -> anyhow::Result<Vec<Measurement>> {
    let run = common.run(IN_FLIGHT);
    let mut rows = Vec::new();
    for (name, requests) in listings {
        eprintln!("{name}: {}, {IN_FLIGHT} in flight", R::RPC);
        let outcome = run.measure(channels, list_call(bearer, requests)).await?;
        rows.push(Measurement::of_calls(name, &outcome, None, TARGET));
    }
    Ok(rows)
}
