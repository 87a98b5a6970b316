//! What authentication remembers between calls, per replica: verified
//! bearer tokens (until they expire), each user's standing (status and
//! role with its permissions, enough to build a [`Caller`](super::Caller)),
//! and the user records GetUser answers with.
//!
//! Standings and records are served from memory only while the replica's
//! listener (`auth::invalidation`) is connected: Postgres triggers NOTIFY
//! `caller_changed` when any of a user's columns but the last-active time
//! changes (so a record's last activity may lag by `max_age`), when a user is
//! deleted, and when a custom role is created, changed or deleted, and the
//! listener drops the entries concerned; a mutation that changed a caller
//! answers only once every replica has ([`CallerCache::sync`]).
//! While it is not connected
//! (or has not been heard from within its lease) every call reads Postgres,
//! and the cache is emptied before it serves again. A max age bounds an
//! entry's life whatever happens. Mutations never trust the cache: they
//! re-read the caller, locked, in their transaction (`caller::confirm`).

use std::{
    borrow::Borrow,
    collections::HashMap,
    hash::{BuildHasher, Hash, RandomState},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::watch;
use uuid::Uuid;

use super::invalidation::{APPLICATION_NAME, CHANGED, LEASE};
use crate::{
    domain::{Error, user::User},
    store::{
        Lock, Pool, notifications,
        roles::{self, Standing},
        users,
    },
};

/// Shards of a map: callers on different shards never wait for each other.
const SHARDS: usize = 16;

/// A map of at most `capacity` entries that each expire, split into shards
/// behind their own locks. Every removal bumps its shard's generation, so a
/// fill that read Postgres before an invalidation is refused afterwards.
struct ExpiringMap<K, V> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    shard_capacity: usize,
    hasher: RandomState,
}

struct Shard<K, V> {
    entries: HashMap<K, (V, Instant)>,
    generation: u64,
}

/// Taken before reading what is to be inserted: the shard's generation then.
#[derive(Clone, Copy)]
struct Ticket {
    shard: usize,
    generation: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> ExpiringMap<K, V> {
    fn new(capacity: usize) -> Self {
        ExpiringMap {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        entries: HashMap::new(),
                        generation: 0,
                    })
                })
                .collect(),
            shard_capacity: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    fn shard_of<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        // The high bits: the shard's own map uses another hasher anyway.
        (self.hasher.hash_one(key) >> 32) as usize % SHARDS
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard<K, V>> {
        // No code path panics while holding a shard; a poisoned one is intact.
        self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get<Q>(&self, key: &Q, now: Instant) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut shard = self.lock(self.shard_of(key));
        match shard.entries.get(key) {
            Some((value, expires_at)) if now < *expires_at => Some(value.clone()),
            Some(_) => {
                shard.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn ticket<Q: Hash + ?Sized>(&self, key: &Q) -> Ticket {
        let shard = self.shard_of(key);
        Ticket {
            shard,
            generation: self.lock(shard).generation,
        }
    }

    /// Inserts unless the shard changed since `ticket` was taken; when the
    /// shard is full an arbitrary entry makes room.
    fn insert(&self, ticket: Ticket, key: K, value: V, expires_at: Instant) {
        let mut shard = self.lock(ticket.shard);
        if shard.generation != ticket.generation {
            return;
        }
        if shard.entries.len() >= self.shard_capacity && !shard.entries.contains_key(&key) {
            // Slots are laid out by hash: the first one holds a random entry.
            if let Some(victim) = shard.entries.keys().next().cloned() {
                shard.entries.remove(&victim);
            }
        }
        shard.entries.insert(key, (value, expires_at));
    }

    fn remove(&self, key: &K) {
        let mut shard = self.lock(self.shard_of(key));
        shard.generation += 1;
        shard.entries.remove(key);
    }

    fn retain(&self, keep: impl Fn(&K) -> bool) {
        for index in 0..self.shards.len() {
            let mut shard = self.lock(index);
            shard.generation += 1;
            shard.entries.retain(|key, _| keep(key));
        }
    }

    fn clear(&self) {
        self.retain(|_| false);
    }
}

/// How long and how much the cache remembers.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    /// Longest a user's standing is served from memory; zero turns the
    /// standing cache off (every call reads Postgres).
    pub max_age: Duration,
    /// Most users remembered, and most tokens.
    pub capacity: usize,
}

/// The per-replica memory of authentication; see the module documentation.
pub struct CallerCache {
    /// Keyed by (workspace id, user id); `None` when turned off.
    standings: Option<ExpiringMap<(Uuid, Uuid), Arc<Standing>>>,
    /// User records as GetUser returns them, keyed the same way.
    users: Option<ExpiringMap<(Uuid, Uuid), Arc<User>>>,
    max_age: Duration,
    /// Verified bearer tokens: (user id, workspace id, issued at) until
    /// they expire.
    tokens: ExpiringMap<Box<str>, (Uuid, Uuid, u64)>,
    /// Until when the listener vouches for the standings, in nanoseconds
    /// since `epoch`; 0 while it is not connected.
    trusted_until: AtomicU64,
    epoch: Instant,
    /// Standings served from memory, for tests, and as a metric.
    hits: AtomicU64,
    hits_metric: metrics::Counter,
    /// How many times the listener (re)connected.
    connections: AtomicU64,
    /// The syncs this replica waits on, by token: acknowledgements so far.
    syncs: Mutex<HashMap<Uuid, watch::Sender<i64>>>,
}

impl CallerCache {
    pub fn new(settings: CacheSettings) -> Self {
        let capacity = settings.capacity.max(1);
        CallerCache {
            standings: (!settings.max_age.is_zero()).then(|| ExpiringMap::new(capacity)),
            users: (!settings.max_age.is_zero()).then(|| ExpiringMap::new(capacity)),
            max_age: settings.max_age,
            tokens: ExpiringMap::new(capacity),
            trusted_until: AtomicU64::new(0),
            epoch: Instant::now(),
            hits: AtomicU64::new(0),
            hits_metric: metrics::counter!("wowchat_caller_cache_hits_total"),
            connections: AtomicU64::new(0),
            syncs: Mutex::new(HashMap::new()),
        }
    }

    fn nanos_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// True while the listener is connected and within its lease.
    fn trusted(&self, now: Instant) -> bool {
        self.nanos_since_epoch(now) < self.trusted_until.load(Ordering::Acquire)
    }

    /// The standing of `user_id` of `workspace_id` as of now: from memory
    /// while the listener vouches for it, else read from Postgres in one
    /// round trip (and remembered, unless an invalidation came meanwhile).
    pub async fn standing(
        &self,
        pool: &Pool,
        workspace_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<Arc<Standing>>, Error> {
        self.read_through(
            self.standings.as_ref(),
            (workspace_id, user_id),
            async || {
                let client = pool.get().await?;
                roles::standing(&client, workspace_id, user_id).await
            },
        )
        .await
    }

    /// The user `user_id` of `workspace_id` as of now, like [`Self::standing`].
    pub async fn user(
        &self,
        pool: &Pool,
        workspace_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<Arc<User>>, Error> {
        self.read_through(self.users.as_ref(), (workspace_id, user_id), async || {
            let client = pool.get().await?;
            users::USERS
                .get(&client, workspace_id, user_id, Lock::None)
                .await
        })
        .await
    }

    /// `key` from `map` while the listener vouches for it, else what `read`
    /// finds, remembered unless an invalidation came during the read.
    async fn read_through<V>(
        &self,
        map: Option<&ExpiringMap<(Uuid, Uuid), Arc<V>>>,
        key: (Uuid, Uuid),
        read: impl AsyncFnOnce() -> Result<Option<V>, Error>,
    ) -> Result<Option<Arc<V>>, Error> {
        let now = Instant::now();
        let Some(map) = map.filter(|_| self.trusted(now)) else {
            return Ok(read().await?.map(Arc::new));
        };
        if let Some(value) = map.get(&key, now) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            self.hits_metric.increment(1);
            return Ok(Some(value));
        }
        // Taken before the read: an invalidation during it refuses the insert.
        let ticket = map.ticket(&key);
        let value = read().await?.map(Arc::new);
        if let Some(value) = &value {
            map.insert(ticket, key, value.clone(), now + self.max_age);
        }
        Ok(value)
    }

    /// (user id, workspace id, issued at) of a bearer token `verify`
    /// accepted before and that has not expired since.
    pub fn verified_token(&self, token: &str) -> Option<(Uuid, Uuid, u64)> {
        self.tokens.get(token, Instant::now())
    }

    /// Remembers a token `verify` accepted until `accepted_until` (seconds
    /// since the Unix epoch).
    pub fn remember_token(&self, token: &str, ids: (Uuid, Uuid, u64), accepted_until: u64) {
        let left = accepted_until.saturating_sub(jsonwebtoken::get_current_timestamp());
        if left == 0 {
            return;
        }
        let ticket = self.tokens.ticket(token);
        self.tokens.insert(
            ticket,
            token.into(),
            ids,
            Instant::now() + Duration::from_secs(left),
        );
    }

    /// Drops one user's standing and record (their row changed).
    pub fn forget_user(&self, workspace_id: Uuid, user_id: Uuid) {
        if let Some(standings) = &self.standings {
            standings.remove(&(workspace_id, user_id));
        }
        if let Some(users) = &self.users {
            users.remove(&(workspace_id, user_id));
        }
    }

    /// Drops one user's record only: their last-active time moved, which
    /// notifies no replica (see migration V17); the replica that wrote it
    /// at least answers with it from its next call.
    pub fn forget_record(&self, workspace_id: Uuid, user_id: Uuid) {
        if let Some(users) = &self.users {
            users.remove(&(workspace_id, user_id));
        }
    }

    /// Drops every standing of a workspace (a custom role changed; the
    /// records name the role, which stays the same).
    pub fn forget_workspace(&self, workspace_id: Uuid) {
        if let Some(standings) = &self.standings {
            standings.retain(|(workspace, _)| *workspace != workspace_id);
        }
    }

    fn forget_all(&self) {
        if let Some(standings) = &self.standings {
            standings.clear();
        }
        if let Some(users) = &self.users {
            users.clear();
        }
    }

    /// Waits until every replica applied what was committed before the
    /// call: a change to a caller then applies on any replica's very next
    /// call, not merely once its notification arrives. Sends `sync <token>`
    /// after the change (notifications arrive in commit order) and waits
    /// for each replica's listener to acknowledge it on `caller_synced`,
    /// or, at most, until every replica's lease has run out (a replica
    /// that has not applied the change by then has stopped serving).
    pub async fn sync(&self, pool: &Pool) {
        let deadline = tokio::time::Instant::now() + LEASE;
        let token = Uuid::new_v4();
        let (acknowledged, mut acknowledgements) = watch::channel(0);
        self.lock_syncs().insert(token, acknowledged);
        let sent = async {
            let client = pool.get().await?;
            notifications::notify_and_count_listeners(
                &client,
                CHANGED,
                &format!("sync {token}"),
                APPLICATION_NAME,
            )
            .await
        }
        .await;
        match sent {
            Ok(listeners) => {
                let all = acknowledgements.wait_for(|count| *count >= listeners);
                if tokio::time::timeout_at(deadline, all).await.is_err() {
                    tracing::warn!(
                        listeners,
                        "not every replica acknowledged a caller change in time"
                    );
                }
            }
            Err(error) => {
                tracing::warn!(error = ?error, "syncing the replicas' caller caches; waiting out their leases");
                tokio::time::sleep_until(deadline).await;
            }
        }
        self.lock_syncs().remove(&token);
    }

    /// A replica's listener acknowledged the sync `token`.
    pub(super) fn acknowledged(&self, token: &str) {
        let Ok(token) = Uuid::parse_str(token) else {
            return;
        };
        if let Some(sync) = self.lock_syncs().get(&token) {
            sync.send_modify(|count| *count += 1);
        }
    }

    fn lock_syncs(&self) -> MutexGuard<'_, HashMap<Uuid, watch::Sender<i64>>> {
        self.syncs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies a `caller_changed` notification: `<workspace> <user>` or
    /// `<workspace>`. One it cannot read empties the cache.
    pub(super) fn apply(&self, payload: &str) {
        let mut ids = payload.split(' ').map(Uuid::parse_str);
        match (ids.next(), ids.next(), ids.next()) {
            (Some(Ok(workspace)), Some(Ok(user)), None) => self.forget_user(workspace, user),
            (Some(Ok(workspace)), None, None) => self.forget_workspace(workspace),
            _ => {
                tracing::warn!(payload, "unreadable caller_changed notification");
                self.forget_all();
            }
        }
    }

    /// The listener is listening again: nothing remembered from before can
    /// be trusted, and from now until `lease_end` the cache may serve.
    pub(super) fn connected(&self, lease_end: Instant) {
        self.forget_all();
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.renew(lease_end);
        metrics::gauge!("wowchat_caller_cache_listening").set(1.0);
    }

    /// The listener was heard from: the cache may serve until `lease_end`.
    pub(super) fn renew(&self, lease_end: Instant) {
        self.trusted_until
            .store(self.nanos_since_epoch(lease_end).max(1), Ordering::Release);
    }

    /// The listener lost its connection: every call reads Postgres.
    pub(super) fn disconnected(&self) {
        self.trusted_until.store(0, Ordering::Release);
        self.forget_all();
        metrics::gauge!("wowchat_caller_cache_listening").set(0.0);
    }

    /// True while standings may be served from memory.
    pub fn is_serving(&self) -> bool {
        self.standings.is_some() && self.trusted(Instant::now())
    }

    /// Standings and records served from memory so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// How many times the listener connected so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{permission::Role, user::UserStatus};

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    fn standing(workspace_id: Uuid, user_id: Uuid) -> Arc<Standing> {
        Arc::new(Standing {
            user_id,
            workspace_id,
            email: "sue@example.com".into(),
            display_name: "Sue".into(),
            status: UserStatus::Active,
            role: Role::builtin("agent").expect("a built-in role"),
            sessions_valid_after: None,
            access_expires_at: None,
        })
    }

    #[test]
    fn a_fill_that_began_before_an_invalidation_is_not_remembered() {
        let map = ExpiringMap::new(100);
        let ticket = map.ticket(&1);
        map.remove(&1);
        map.insert(ticket, 1, "stale", later());
        assert_eq!(map.get(&1, Instant::now()), None);

        let ticket = map.ticket(&1);
        map.clear();
        map.insert(ticket, 1, "stale", later());
        assert_eq!(map.get(&1, Instant::now()), None);

        let ticket = map.ticket(&1);
        map.insert(ticket, 1, "fresh", later());
        assert_eq!(map.get(&1, Instant::now()), Some("fresh"));
    }

    #[test]
    fn the_map_never_holds_more_than_its_capacity() {
        let map = ExpiringMap::new(64);
        for key in 0..10_000 {
            map.insert(map.ticket(&key), key, key, later());
        }
        let held: usize = (0..SHARDS).map(|shard| map.lock(shard).entries.len()).sum();
        assert!(held <= 64, "{held} entries");
        assert!(held > 0);
    }

    #[test]
    fn an_expired_entry_is_not_served() {
        let map = ExpiringMap::new(10);
        let now = Instant::now();
        map.insert(map.ticket(&1), 1, "old", now + Duration::from_millis(5));
        assert_eq!(map.get(&1, now), Some("old"));
        assert_eq!(map.get(&1, now + Duration::from_millis(5)), None);
    }

    #[test]
    fn notifications_drop_a_user_or_a_whole_workspace_and_garbage_drops_all() {
        let cache = CallerCache::new(CacheSettings {
            max_age: Duration::from_secs(60),
            capacity: 100,
        });
        let standings = cache.standings.as_ref().expect("turned on");
        let (acme, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (sue, tom, ann) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let fill = |workspace, user| {
            let key = (workspace, user);
            standings.insert(
                standings.ticket(&key),
                key,
                standing(workspace, user),
                later(),
            );
        };
        let held = |workspace, user| standings.get(&(workspace, user), Instant::now()).is_some();
        fill(acme, sue);
        fill(acme, tom);
        fill(other, ann);

        cache.apply(&format!("{acme} {sue}"));
        assert!(!held(acme, sue) && held(acme, tom) && held(other, ann));
        cache.apply(&acme.to_string());
        assert!(!held(acme, tom) && held(other, ann));
        cache.apply("not ids");
        assert!(!held(other, ann));
    }

    #[test]
    fn the_cache_serves_only_while_its_listener_vouches_for_it() {
        let cache = CallerCache::new(CacheSettings {
            max_age: Duration::from_secs(60),
            capacity: 100,
        });
        assert!(!cache.is_serving(), "not before the listener connects");
        cache.connected(later());
        assert!(cache.is_serving());
        cache.renew(Instant::now());
        assert!(!cache.is_serving(), "not past the lease");
        cache.renew(later());
        cache.disconnected();
        assert!(!cache.is_serving());

        let off = CallerCache::new(CacheSettings {
            max_age: Duration::ZERO,
            capacity: 100,
        });
        off.connected(later());
        assert!(!off.is_serving(), "a max age of zero turns it off");
    }
}
