//! The service's operations: each checks the caller's permission, applies the
//! domain rules and writes the change, its activity entry and its events in
//! one Postgres transaction. Handlers in `grpc` call these with parsed input.

pub mod access_expiry;
pub mod activity;
pub mod bootstrap;
pub mod directory;
pub mod directory_groups;
pub mod invitation_policy;
pub mod invitations;
pub mod invite_links;
pub mod join_requests;
pub mod joining_policy;
pub mod limits;
pub mod mail_domains;
pub mod roles;
mod rules;
pub mod sign_in;
pub mod suppressions;
mod unit_of_work;
pub mod users;
pub mod workspace_settings;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::{
    auth::{Caller, CallerCache, JwtKeys, PasswordHasher, cache::CacheSettings},
    domain::{
        Error,
        activity::{Action, ActivityEntry, FieldChange},
        idempotency::IdempotencyKey,
        pagination::{self, Cursor, Listed, PageKey, Window, filter_digest},
        permission::Permission,
    },
    store::{
        GenericClient, Lock, Pool, Table, activity as activity_store, idempotency, outbox,
        pipeline::Write,
    },
};

/// What every operation needs; shared by all requests.
pub struct AppState {
    pub pool: Pool,
    pub keys: Arc<JwtKeys>,
    /// Verified tokens and callers' standings, invalidated by Postgres.
    pub callers: Arc<CallerCache>,
    pub hasher: PasswordHasher,
    /// Access token lifetime, sign-in attempt limits, last-active throttle.
    pub sign_in: sign_in::SignInPolicy,
    /// Resend cooldown, sends per invitation, sending and token-attempt limits.
    pub invitations: invitation_policy::InvitationPolicy,
    /// The rate limits every replica shares, in Postgres.
    pub limits: limits::SharedLimits,
    /// Told after each commit that wrote outbox rows.
    pub relay_wakeup: outbox::RelayWakeup,
    /// The limits and caps of invite links and join requests.
    pub joining: joining_policy::JoiningPolicy,
    /// TXT lookups for domain verification.
    pub dns: crate::dns::TxtResolver,
    /// Each directory token's SCIM requests, on this replica.
    pub directory: directory::DirectoryLimit,
    /// Seal invitation tokens for the mailer; `None` in development only.
    pub mail_tokens: Option<Arc<wowchat_platform::sealing::TokenKeys>>,
    /// The key page tokens are MAC'd under, derived on first use.
    page_key: OnceCell<PageKey>,
    /// How long requests wait for a pooled connection; resolved once.
    pool_checkout: metrics::Histogram,
}

impl AppState {
    /// The state of a server: its pool, keys, caller cache and hasher, and
    /// its policies. The cache serves only once its listener
    /// (`auth::invalidation::run`) is connected.
    pub fn new(
        pool: Pool,
        keys: Arc<JwtKeys>,
        cache: CacheSettings,
        hasher: PasswordHasher,
        sign_in: &sign_in::SignInSettings,
        invitations: &invitation_policy::InvitationPolicySettings,
    ) -> Self {
        AppState {
            relay_wakeup: outbox::RelayWakeup::spawn(pool.clone()),
            limits: limits::SharedLimits::new(pool.clone()),
            pool,
            keys,
            callers: Arc::new(CallerCache::new(cache)),
            hasher,
            sign_in: sign_in::SignInPolicy::new(sign_in),
            invitations: invitation_policy::InvitationPolicy::new(invitations),
            page_key: OnceCell::new(),
            dns: crate::dns::TxtResolver::unconfigured(),
            joining: joining_policy::JoiningPolicy::new(
                &joining_policy::JoiningPolicySettings::default(),
            ),
            directory: directory::DirectoryLimit::new(
                directory::DirectoryLimit::DEFAULT_PER_MINUTE,
            ),
            mail_tokens: None,
            pool_checkout: wowchat_platform::metrics::checkout_histogram("requests"),
        }
    }

    /// Seals the invitation tokens of mail commands with `keys`.
    pub fn with_mail_tokens(mut self, keys: Option<wowchat_platform::sealing::TokenKeys>) -> Self {
        self.mail_tokens = keys.map(Arc::new);
        self
    }

    /// The limits and caps of invite links and join requests.
    pub fn with_joining(mut self, settings: &joining_policy::JoiningPolicySettings) -> Self {
        self.joining = joining_policy::JoiningPolicy::new(settings);
        self
    }

    /// Looks TXT records up through `dns` (domain verification).
    pub fn with_dns(mut self, dns: crate::dns::TxtResolver) -> Self {
        self.dns = dns;
        self
    }

    /// Limits each directory token to `per_minute` SCIM requests on this
    /// replica (0: no limit).
    pub fn with_directory_limit(mut self, per_minute: u32) -> Self {
        self.directory = directory::DirectoryLimit::new(per_minute);
        self
    }

    /// A connection from the request pool, its wait timed
    /// (`wowchat_db_pool_checkout_seconds{pool="requests"}`).
    pub async fn connection(
        &self,
    ) -> Result<deadpool_postgres::Object, deadpool_postgres::PoolError> {
        wowchat_platform::metrics::checkout(&self.pool, &self.pool_checkout).await
    }

    /// The page-token key: one read of the installation's secret, then none.
    pub async fn page_key(&self) -> Result<&PageKey, Error> {
        self.page_key
            .get_or_try_init(|| self.limits.page_key())
            .await
    }
}

/// Who did what to whom, in the request's transaction.
struct Record<'a> {
    workspace_id: Uuid,
    actor_id: Option<Uuid>,
    actor_directory_token_id: Option<Uuid>,
    action: Action,
    target_user_id: Option<Uuid>,
    target_invitation_id: Option<Uuid>,
    changes: Vec<FieldChange>,
    request_id: &'a str,
}

/// The activity entry of a change, as a write.
fn activity_entry(record: Record<'_>) -> Result<Write, Error> {
    activity_store::insert(ActivityEntry {
        id: Uuid::now_v7(),
        workspace_id: record.workspace_id,
        actor_id: record.actor_id,
        actor_directory_token_id: record.actor_directory_token_id,
        action: record.action.as_str().to_owned(),
        target_user_id: record.target_user_id,
        target_invitation_id: record.target_invitation_id,
        changes: record.changes,
        request_id: record.request_id.to_owned(),
        occurred_at: time::OffsetDateTime::now_utc(),
    })
}

/// The first result of a retried request, if this is a retry.
async fn replayed<T: DeserializeOwned>(
    tx: &impl GenericClient,
    caller: &Caller,
    operation: &str,
    key: Option<&IdempotencyKey>,
) -> Result<Option<T>, Error> {
    let Some(key) = key else { return Ok(None) };
    match idempotency::claim(tx, caller.workspace_id, caller.user_id, operation, key).await? {
        idempotency::Claim::New => Ok(None),
        idempotency::Claim::Replay(stored) => {
            serde_json::from_value(stored).map(Some).map_err(|e| {
                Error::Unexpected(anyhow::Error::new(e).context("decoding a stored result"))
            })
        }
    }
}

/// Stores the result of a request made with a request id, with the commit.
fn remember<T: Serialize>(
    caller: &Caller,
    operation: &str,
    key: Option<&IdempotencyKey>,
    result: &T,
) -> Result<Option<Write>, Error> {
    let Some(key) = key else { return Ok(None) };
    let value = serde_json::to_value(result)
        .map_err(|e| Error::Unexpected(anyhow::Error::new(e).context("encoding a result")))?;
    Ok(Some(idempotency::complete(
        caller.workspace_id,
        caller.user_id,
        operation,
        key,
        value,
    )))
}

/// How the Get and List RPCs of one kind of a workspace's records read
/// them, the same for every kind: the permission a reader needs; the table
/// a record is read from by id (`store::Table::get`), whose name also names
/// the listing in its page tokens; the error for an id that names none; and
/// the store's listing with its filter, newest first
/// (`store::Table::newest_first`).
pub(crate) struct Reads<T: 'static, F: 'static> {
    pub(crate) permission: Permission,
    pub(crate) table: &'static Table<T>,
    pub(crate) not_found: fn() -> Error,
    pub(crate) list: ListFn<T, F>,
}

/// A store listing: at most `limit` of the workspace's records that match
/// the filter, newest first after the cursor; and how many match in all.
pub(crate) type ListFn<T, F> = for<'c> fn(
    &'c deadpool_postgres::Object,
    Uuid,
    &'c F,
    Window,
) -> BoxFuture<'c, Result<(Vec<T>, i64), Error>>;

impl<T: Listed, F: std::fmt::Debug> Reads<T, F> {
    /// The record `id` of the caller's workspace.
    pub(crate) async fn get(
        &self,
        state: &AppState,
        caller: &Caller,
        id: Uuid,
    ) -> Result<T, Error> {
        caller.require(self.permission)?;
        let client = state.connection().await?;
        self.table
            .get(&client, caller.workspace_id, id, Lock::None)
            .await?
            .ok_or_else(self.not_found)
    }

    /// A page of the caller's workspace's records that match `filter`.
    pub(crate) async fn list(
        &self,
        state: &AppState,
        caller: &Caller,
        filter: F,
        page: PageRequest,
    ) -> Result<Page<T>, Error> {
        let listing = format!("{}|{filter:?}", self.table.name);
        let (page, client) = page.open(state, caller, self.permission, &listing).await?;
        let window = page.window();
        let (items, total) = (self.list)(&client, caller.workspace_id, &filter, window).await?;
        Ok(page.page(items, total, T::cursor))
    }
}

/// One page of a listing.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
    pub total_size: i64,
}

/// A list request's page: its size, the cursor it continues from, and the
/// digest of its filters that its tokens carry.
pub struct PageRequest {
    pub size: i64,
    pub token: String,
}

impl PageRequest {
    /// Opens, for a caller who reads it with `permission`, the page of a
    /// listing named with its filters by `listing` (a token continues only
    /// the listing it came from): the cursor it continues from and how many
    /// rows to read, and a connection to read them with.
    async fn open<'s>(
        self,
        state: &'s AppState,
        caller: &Caller,
        permission: Permission,
        listing: &str,
    ) -> Result<(OpenPage<'s>, deadpool_postgres::Object), Error> {
        caller.require(permission)?;
        let filters = filter_digest(listing);
        let key = state.page_key().await?;
        let after = pagination::decode_page_token(key, &self.token, filters)?;
        let page = OpenPage {
            size: self.size,
            key,
            filters,
            after,
        };
        Ok((page, state.connection().await?))
    }
}

/// A page being read: rows after `after`, at most [`OpenPage::window`]'s limit.
struct OpenPage<'s> {
    size: i64,
    key: &'s PageKey,
    filters: [u8; 8],
    after: Option<Cursor>,
}

impl OpenPage<'_> {
    /// The rows to read: after the cursor, one more than the page holds, to
    /// learn whether a next page exists.
    fn window(&self) -> Window {
        Window {
            after: self.after,
            limit: self.size + 1,
        }
    }

    /// The page of `items` (read in [`Self::window`]), its token naming the
    /// `cursor` of its last row.
    fn page<T>(self, mut items: Vec<T>, total_size: i64, cursor: impl Fn(&T) -> Cursor) -> Page<T> {
        let size = usize::try_from(self.size).unwrap_or(usize::MAX);
        let next_page_token = if items.len() > size {
            items.truncate(size);
            items
                .last()
                .map(|last| pagination::encode_page_token(self.key, cursor(last), self.filters))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Page {
            items,
            next_page_token,
            total_size,
        }
    }
}
