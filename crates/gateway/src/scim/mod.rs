//! SCIM 2.0 (RFC 7643, RFC 7644) at `/scim/v2`, for identity providers
//! (Okta, Microsoft Entra ID) that keep a workspace's members in sync. The
//! protocol is here (JSON resources, filters, PATCH, paging, errors); the
//! rules are the service's, reached through `DirectoryService` with the
//! directory's token passed on as the caller's bearer token.
//!
//! - `discovery`: ServiceProviderConfig, ResourceTypes, Schemas;
//! - `user`: a member as a SCIM User and back;
//! - `filter`: `filter=` as the service's conditions;
//! - `group`: a directory's group as a SCIM Group and back;
//! - `resource`: Users and Groups as one trait: each kind's JSON and RPCs;
//! - `patch`: PatchOp applied to a resource's JSON;
//! - `errors`: the SCIM Error body of every failure.

pub mod discovery;
pub mod errors;
pub mod filter;
pub mod group;
pub mod patch;
mod resource;
pub mod user;

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};
use tonic::Code;
use wowchat_users_api::v1 as proto;

use self::{
    errors::ScimError,
    resource::{Client, Reply, Resource},
};
use crate::{Shared, call_typed, client_address::ClientAddress, read_body};

/// The media type of SCIM (RFC 7644 §8.1).
pub const CONTENT_TYPE: &str = "application/scim+json";
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Most resources one page holds (ServiceProviderConfig `filter.maxResults`).
pub const MAX_COUNT: i32 = 200;
/// How many tries a PATCH makes when the member changes under it.
const PATCH_TRIES: usize = 3;

/// What one SCIM request needs besides its body.
struct Call<'a> {
    shared: &'a Shared,
    headers: &'a HeaderMap,
    client: std::net::IpAddr,
    /// The SCIM endpoint's URL, for `meta.location`.
    base: String,
}

/// Every request under `/scim/v2`.
pub(crate) async fn serve(
    State(shared): State<Arc<Shared>>,
    ClientAddress(client): ClientAddress,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Body,
) -> Response {
    let call = Call {
        shared: &shared,
        headers: &headers,
        client,
        base: base_url(&shared, &headers),
    };
    match route(&call, &method, &uri, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn base_url(shared: &Shared, headers: &HeaderMap) -> String {
    let origin = match &shared.public_url {
        Some(url) => url.clone(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| {
                    h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
                })
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    format!("{origin}/scim/v2")
}

async fn route(
    call: &Call<'_>,
    method: &Method,
    uri: &Uri,
    body: axum::body::Body,
) -> Result<Response, ScimError> {
    let path = uri.path().strip_prefix("/scim/v2").unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let query = Query::parse(uri.query());
    let only_get = |method: &Method| {
        if method == Method::GET {
            Ok(())
        } else {
            Err(ScimError::method_not_allowed(format!(
                "{path} is read-only: GET"
            )))
        }
    };
    match segments.as_slice() {
        ["ServiceProviderConfig"] => {
            only_get(method)?;
            Ok(scim_json(
                StatusCode::OK,
                discovery::service_provider_config(&call.base),
            ))
        }
        ["ResourceTypes"] => {
            only_get(method)?;
            Ok(scim_json(
                StatusCode::OK,
                discovery::list(discovery::resource_types(&call.base)),
            ))
        }
        ["ResourceTypes", id] => {
            only_get(method)?;
            one_of(discovery::resource_types(&call.base), id, "resource type")
        }
        ["Schemas"] => {
            only_get(method)?;
            Ok(scim_json(
                StatusCode::OK,
                discovery::list(discovery::schemas(&call.base)),
            ))
        }
        ["Schemas", id] => {
            only_get(method)?;
            one_of(discovery::schemas(&call.base), id, "schema")
        }
        ["Users", rest @ ..] => {
            route_kind::<proto::DirectoryUser>(call, method, rest, path, &query, body).await
        }
        ["Groups", rest @ ..] => {
            route_kind::<proto::DirectoryGroup>(call, method, rest, path, &query, body).await
        }
        [".search"] if method == Method::POST => {
            let body = json_body(call, body).await?;
            search_all(call, &Query::of_search(&body)?).await
        }
        [".search"] => Err(ScimError::method_not_allowed(format!(
            "{path} does not take {method}"
        ))),
        _ => Err(ScimError::not_found(format!("no SCIM endpoint at {path}"))),
    }
}

/// `/Users…` or `/Groups…` (`rest` is what follows): the same endpoints on
/// either kind.
async fn route_kind<R: Resource>(
    call: &Call<'_>,
    method: &Method,
    rest: &[&str],
    path: &str,
    query: &Query,
    body: axum::body::Body,
) -> Result<Response, ScimError> {
    match rest {
        [] if method == Method::GET => list::<R>(call, query).await,
        [] if method == Method::POST => {
            let body = json_body(call, body).await?;
            let created: R = create(call, R::fields(&body)?).await?;
            Ok(resource_response(
                StatusCode::CREATED,
                &created,
                &call.base,
                &Query::default(),
            ))
        }
        [".search"] if method == Method::POST => {
            let body = json_body(call, body).await?;
            list::<R>(call, &Query::of_search(&body)?).await
        }
        [id] if method == Method::GET => {
            let found: R = get(call, id).await?;
            Ok(resource_response(StatusCode::OK, &found, &call.base, query))
        }
        [id] if method == Method::PUT => {
            let body = json_body(call, body).await?;
            let replaced: R = replace(call, id, R::fields(&body)?, if_match(call.headers)).await?;
            Ok(resource_response(
                StatusCode::OK,
                &replaced,
                &call.base,
                query,
            ))
        }
        [id] if method == Method::PATCH => {
            let body = json_body(call, body).await?;
            let patched: R = patched(call, id, &body).await?;
            Ok(resource_response(
                StatusCode::OK,
                &patched,
                &call.base,
                query,
            ))
        }
        [id] if method == Method::DELETE => {
            delete::<R>(call, id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        [] | [_] => Err(ScimError::method_not_allowed(format!(
            "{path} does not take {method}"
        ))),
        _ => Err(ScimError::not_found(format!("no SCIM endpoint at {path}"))),
    }
}

fn one_of(resources: Vec<Value>, id: &str, what: &str) -> Result<Response, ScimError> {
    resources
        .into_iter()
        .find(|r| {
            r["id"]
                .as_str()
                .is_some_and(|rid| rid.eq_ignore_ascii_case(id))
        })
        .map(|r| scim_json(StatusCode::OK, r))
        .ok_or_else(|| ScimError::not_found(format!("no {what} {id:?}")))
}

fn scim_json(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body.to_string(),
    )
        .into_response()
}

/// The body as JSON (SCIM's media type or plain JSON, as clients send it).
async fn json_body(call: &Call<'_>, body: axum::body::Body) -> Result<Value, ScimError> {
    let bytes: Bytes = read_body(call.shared, body)
        .await
        .map_err(|error| ScimError::new(error.http, None, error.detail))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not JSON: {e}")))
}

/// `If-Match`: the version a change must find; `*` or none for any.
fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "*")
        .map(str::to_owned)
}

/// A listing's parameters, from the query string or a SearchRequest.
#[derive(Default, Clone)]
struct Query {
    filter: Option<String>,
    start_index: Option<String>,
    count: Option<String>,
    attributes: Vec<String>,
    excluded_attributes: Vec<String>,
}

impl Query {
    fn parse(query: Option<&str>) -> Query {
        let mut out = Query::default();
        let split = |v: &str| {
            v.split(',')
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect()
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.to_ascii_lowercase().as_str() {
                "filter" => out.filter = Some(value.into_owned()),
                "startindex" => out.start_index = Some(value.into_owned()),
                "count" => out.count = Some(value.into_owned()),
                "attributes" => out.attributes = split(&value),
                "excludedattributes" => out.excluded_attributes = split(&value),
                _ => {}
            }
        }
        out
    }

    /// A SearchRequest body (RFC 7644 §3.4.3).
    fn of_search(body: &Value) -> Result<Query, ScimError> {
        let Value::Object(body) = body else {
            return Err(ScimError::invalid_syntax(
                "the body must be a SearchRequest object",
            ));
        };
        let names = |key: &str| -> Vec<String> {
            match user::get(body, key) {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect(),
                Some(Value::String(list)) => list.split(',').map(|a| a.trim().to_owned()).collect(),
                _ => Vec::new(),
            }
        };
        let text = |key: &str| {
            user::get(body, key).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        Ok(Query {
            filter: text("filter"),
            start_index: text("startIndex"),
            count: text("count"),
            attributes: names("attributes"),
            excluded_attributes: names("excludedAttributes"),
        })
    }

    /// `startIndex` (1-based; less than 1 is 1) and `count` (0 to 200;
    /// more is 200, as RFC 7644 §3.4.2.4 lets a server cap it).
    fn paging(&self) -> Result<(i32, i32), ScimError> {
        let number = |v: &Option<String>, name: &str| -> Result<Option<i64>, ScimError> {
            v.as_deref()
                .map(|v| {
                    v.trim()
                        .parse::<i64>()
                        .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer")))
                })
                .transpose()
        };
        let start = number(&self.start_index, "startIndex")?
            .unwrap_or(1)
            .clamp(1, i64::from(i32::MAX));
        let count = number(&self.count, "count")?
            .unwrap_or(100)
            .clamp(0, i64::from(MAX_COUNT));
        Ok((
            i32::try_from(start).unwrap_or(i32::MAX),
            i32::try_from(count).unwrap_or(MAX_COUNT),
        ))
    }
}

/// Keeps (`attributes`) or drops (`excludedAttributes`) attributes of a
/// resource; `id` and `schemas` always stay (RFC 7644 §3.9).
fn project(resource: &mut Value, query: &Query) {
    let Value::Object(object) = resource else {
        return;
    };
    let always = |k: &str| k.eq_ignore_ascii_case("id") || k.eq_ignore_ascii_case("schemas");
    if !query.attributes.is_empty() {
        let mut kept = Map::new();
        for (key, value) in std::mem::take(object) {
            if always(&key) {
                kept.insert(key, value);
                continue;
            }
            let wanted: Vec<&str> = query
                .attributes
                .iter()
                .filter_map(|a| {
                    let a = a.strip_prefix(&format!("{USER_SCHEMA}:")).unwrap_or(a);
                    let (top, sub) = a.split_once('.').map_or((a, None), |(t, s)| (t, Some(s)));
                    top.eq_ignore_ascii_case(&key).then_some(sub.unwrap_or(""))
                })
                .collect();
            if wanted.contains(&"") {
                kept.insert(key, value);
            } else if !wanted.is_empty()
                && let Value::Object(subs) = value
            {
                let subs: Map<String, Value> = subs
                    .into_iter()
                    .filter(|(k, _)| wanted.iter().any(|w| w.eq_ignore_ascii_case(k)))
                    .collect();
                kept.insert(key, Value::Object(subs));
            }
        }
        *object = kept;
    }
    for excluded in &query.excluded_attributes {
        let excluded = excluded
            .strip_prefix(&format!("{USER_SCHEMA}:"))
            .unwrap_or(excluded);
        if always(excluded) {
            continue;
        }
        match excluded.split_once('.') {
            None => object.retain(|k, _| !k.eq_ignore_ascii_case(excluded)),
            Some((top, sub)) => {
                for (k, v) in object.iter_mut() {
                    if k.eq_ignore_ascii_case(top)
                        && let Value::Object(subs) = v
                    {
                        subs.retain(|k, _| !k.eq_ignore_ascii_case(sub));
                    }
                }
            }
        }
    }
}

/// One resource, with its `ETag` (and, when created, its `Location`).
fn resource_response<R: Resource>(
    status: StatusCode,
    resource: &R,
    base: &str,
    query: &Query,
) -> Response {
    let mut json = resource.json(base);
    project(&mut json, query);
    let mut response = scim_json(status, json);
    if let Ok(etag) = HeaderValue::from_str(resource.etag()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&resource.location(base))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// A ListResponse page.
fn list_response(resources: Vec<Value>, total: i64, start_index: i32) -> Response {
    scim_json(
        StatusCode::OK,
        json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start_index,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }),
    )
}

// ---- calls to the service ----

async fn directory<T, F, Fut>(call: &Call<'_>, retry_safe: bool, f: F) -> Result<T, ScimError>
where
    F: Fn(Client, tonic::metadata::MetadataMap) -> Fut,
    Fut: Future<Output = Reply<T>>,
{
    call_typed(
        call.shared,
        call.headers,
        call.client,
        retry_safe,
        |channel, metadata| f(Client::new(channel), metadata),
    )
    .await
    .map_err(|status| {
        if matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Internal
        ) {
            tracing::warn!(code = ?status.code(), message = status.message(), "SCIM call failed");
        }
        ScimError::of_status(&status)
    })
}

async fn get<R: Resource>(call: &Call<'_>, id: &str) -> Result<R, ScimError> {
    directory(call, true, |client, metadata| {
        R::get(client, metadata, id.to_owned())
    })
    .await?
    .ok_or_else(|| ScimError::not_found(R::MISSING))
}

async fn create<R: Resource>(call: &Call<'_>, fields: R::Fields) -> Result<R, ScimError> {
    directory(call, false, |client, metadata| {
        R::create(client, metadata, fields.clone())
    })
    .await?
    .ok_or_else(|| ScimError::not_found(R::MISSING))
}

async fn replace<R: Resource>(
    call: &Call<'_>,
    id: &str,
    fields: R::Fields,
    etag: Option<String>,
) -> Result<R, ScimError> {
    let etag = etag.unwrap_or_default();
    directory(call, false, |client, metadata| {
        R::replace(
            client,
            metadata,
            id.to_owned(),
            fields.clone(),
            etag.clone(),
        )
    })
    .await?
    .ok_or_else(|| ScimError::not_found(R::MISSING))
}

async fn delete<R: Resource>(call: &Call<'_>, id: &str) -> Result<(), ScimError> {
    directory(call, false, |client, metadata| {
        R::delete(client, metadata, id.to_owned())
    })
    .await
}

async fn list<R: Resource>(call: &Call<'_>, query: &Query) -> Result<Response, ScimError> {
    let (start_index, _) = query.paging()?;
    let (resources, total) = page::<R>(call, query).await?;
    Ok(list_response(resources, total, start_index))
}

/// `POST /.search`: the users, then the groups (RFC 7644 §3.4.3).
async fn search_all(call: &Call<'_>, query: &Query) -> Result<Response, ScimError> {
    let (start_index, _) = query.paging()?;
    let (mut resources, users) = page::<proto::DirectoryUser>(call, query).await?;
    let (groups_found, groups) = page::<proto::DirectoryGroup>(
        call,
        &Query {
            filter: None,
            ..query.clone()
        },
    )
    .await?;
    resources.extend(groups_found);
    Ok(list_response(resources, users + groups, start_index))
}

/// One page of a kind, as projected resources, and how many match in all.
async fn page<R: Resource>(call: &Call<'_>, query: &Query) -> Result<(Vec<Value>, i64), ScimError> {
    let filter = match &query.filter {
        Some(text) if !text.trim().is_empty() => R::filter(text)?,
        _ => R::Filter::default(),
    };
    let (start_index, count) = query.paging()?;
    let (found, total) = directory(call, true, |client, metadata| {
        R::list(client, metadata, filter.clone(), start_index, count)
    })
    .await?;
    let resources: Vec<Value> = found
        .iter()
        .map(|resource| {
            let mut json = resource.json(&call.base);
            project(&mut json, query);
            json
        })
        .collect();
    Ok((resources, i64::from(total)))
}

fn stale() -> ScimError {
    ScimError::new(
        StatusCode::PRECONDITION_FAILED,
        None,
        "the resource changed since that version; read it again",
    )
}

/// PATCH (RFC 7644 §3.5.2) as one rule for every resource: read it, apply
/// the operations to its JSON, replace it whole on the version read. A
/// change made meanwhile makes it read again (up to `PATCH_TRIES`), or,
/// with `If-Match`, fail with 412.
async fn patched<R: Resource>(call: &Call<'_>, id: &str, body: &Value) -> Result<R, ScimError> {
    let expected = if_match(call.headers);
    let mut tries = 0;
    loop {
        tries += 1;
        let current: R = get(call, id).await?;
        let etag = current.etag().to_owned();
        if expected.as_ref().is_some_and(|expected| *expected != etag) {
            return Err(stale());
        }
        let Value::Object(mut resource) = current.json(&call.base) else {
            return Err(ScimError::invalid_value("the resource is no object"));
        };
        patch::apply(&mut resource, body)?;
        let replaced = match R::fields(&Value::Object(resource)) {
            Ok(fields) => replace(call, id, fields, Some(etag)).await,
            Err(error) => Err(error),
        };
        match replaced {
            Err(error)
                if error.status == StatusCode::PRECONDITION_FAILED
                    && expected.is_none()
                    && tries < PATCH_TRIES => {}
            done => return done,
        }
    }
}
