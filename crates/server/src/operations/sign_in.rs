//! Signing in: an email and a password for a short-lived access token; and
//! keeping each user's last-active time.
//!
//! Nothing in a failed sign-in tells who is a member: an unknown workspace,
//! an unknown email and a wrong password give the same INVALID_CREDENTIALS
//! after the same work (one user lookup, one argon2id verification, against
//! a dummy hash when there is no user). Only once the password is right does
//! a deactivated user learn that they are deactivated (PERMISSION_DENIED,
//! USER_DEACTIVATED), as on every other call.
//!
//! Attempts are limited in the memory of each replica, and an attempt over
//! a limit costs no hashing at all:
//! - per client address, every attempt counts (a keyed GCRA limiter,
//!   `governor`);
//! - per email *and* client address, only wrong credentials count: each
//!   attempt reserves a unit and gets it back unless its credentials were
//!   wrong. Keyed by the address too, so guesses from elsewhere cannot lock
//!   the owner of an email out, and a right password never uses the budget.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{AppState, Record, commit_and_wake, record};
use crate::{
    auth::Caller,
    domain::{
        EmailAddress, Error, Reason,
        activity::Action,
        user::{Password, User, UserStatus},
    },
    events,
    store::users,
};

/// A parsed `SignIn` request.
#[derive(Debug)]
pub struct SignIn {
    pub workspace_id: Uuid,
    pub email: EmailAddress,
    pub password: Password,
    /// Where the attempt comes from, for the per-address limit; `None` when
    /// the transport does not say.
    pub client: Option<IpAddr>,
}

/// A successful sign-in: the access token, when it expires, and the user.
pub struct SignedIn {
    pub access_token: String,
    pub expires_at: OffsetDateTime,
    pub user: User,
}

/// The sign-in settings.
#[derive(Debug, Clone)]
pub struct SignInSettings {
    /// How long an access token is accepted.
    pub access_token_ttl: Duration,
    /// Failed attempts per minute for one email (normalized, across
    /// workspaces) from one client address; 0 turns the limit off.
    pub attempts_per_email_per_minute: u32,
    /// Attempts per minute from one client address; 0 turns the limit off.
    pub attempts_per_address_per_minute: u32,
    /// Take the client address from `x-forwarded-for`: only behind proxies
    /// that append to it.
    pub trust_forwarded_for: bool,
    /// How many proxies append to `x-forwarded-for` in front of the service:
    /// the client is the entry that many hops from the right (the TCP peer
    /// being the nearest proxy). Entries further left are the caller's own.
    pub trusted_proxy_hops: u32,
}

/// Prunes idle limiter entries once per this many attempts, so memory stays
/// bounded by the recent attempts, not by every email ever tried.
const PRUNE_EVERY: u64 = 4096;

/// The sign-in policy of one replica: token lifetime, attempt limits, and the
/// throttle of last-active writes.
pub struct SignInPolicy {
    pub access_token_ttl: Duration,
    pub trust_forwarded_for: bool,
    pub trusted_proxy_hops: u32,
    failures: Option<FailureLimit>,
    by_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// One last-active write per user and minute from this replica; the
    /// write itself is skipped by Postgres when another replica did it.
    activity: DefaultKeyedRateLimiter<Uuid>,
    checks: AtomicU64,
}

impl SignInPolicy {
    pub fn new(settings: &SignInSettings) -> Self {
        SignInPolicy {
            access_token_ttl: settings.access_token_ttl,
            trust_forwarded_for: settings.trust_forwarded_for,
            trusted_proxy_hops: settings.trusted_proxy_hops,
            failures: NonZeroU32::new(settings.attempts_per_email_per_minute)
                .map(|n| FailureLimit::per_minute(n.get())),
            by_address: NonZeroU32::new(settings.attempts_per_address_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            activity: RateLimiter::keyed(Quota::per_minute(NonZeroU32::MIN)),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts an attempt against the address limit and reserves a failure of
    /// `email` from there; over either, refused with how long to wait.
    fn admit(&self, email: &str, client: Option<IpAddr>) -> Result<(), Error> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune();
        }
        if let (Some(limiter), Some(address)) = (&self.by_address, client) {
            limiter
                .check_key(&address_key(address))
                .map_err(|until| rate_limited(until.wait_time_from(limiter.clock().now())))?;
        }
        if let Some(limit) = &self.failures {
            limit
                .reserve(failure_key(email, client), Instant::now())
                .map_err(rate_limited)?;
        }
        Ok(())
    }

    /// Gives back the reservation of an attempt whose credentials were right
    /// (or that failed for a reason of ours).
    fn not_a_failure(&self, email: &str, client: Option<IpAddr>) {
        if let Some(limit) = &self.failures {
            limit.release(&failure_key(email, client));
        }
    }

    /// True at most once a minute per user on this replica.
    fn activity_due(&self, user_id: Uuid) -> bool {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune();
        }
        self.activity.check_key(&user_id).is_ok()
    }

    fn prune(&self) {
        if let Some(limit) = &self.failures {
            limit.prune(Instant::now());
        }
        if let Some(limiter) = &self.by_address {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.activity.retain_recent();
        self.activity.shrink_to_fit();
    }
}

/// The limiter key of an address: IPv4 as is, IPv6 by its /64 (what one
/// subscriber usually holds), so rotating addresses within it does not help.
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// The failure limit's key: the email, from one address when known.
fn failure_key(email: &str, client: Option<IpAddr>) -> (String, Option<IpAddr>) {
    (email.to_owned(), client.map(address_key))
}

type FailureKey = (String, Option<IpAddr>);

/// A keyed GCRA limit that, unlike `governor`'s, can give a unit back, so an
/// attempt reserves before hashing (concurrent guesses cannot all slip
/// through) and only wrong credentials keep what they reserved.
struct FailureLimit {
    /// Time one unit takes to come back.
    interval: Duration,
    /// How far ahead of now the theoretical arrival time may run: the burst.
    tolerance: Duration,
    /// Per key, the theoretical arrival time of its next unit.
    keys: Mutex<HashMap<FailureKey, Instant>>,
}

impl FailureLimit {
    fn per_minute(n: u32) -> Self {
        let interval = Duration::from_secs(60) / n.max(1);
        FailureLimit {
            interval,
            tolerance: interval * n.saturating_sub(1),
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<FailureKey, Instant>> {
        // The map holds plain instants: one a panicking thread left is still sound.
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a unit, or says how long until one is free.
    fn reserve(&self, key: FailureKey, now: Instant) -> Result<(), Duration> {
        let mut keys = self.keys();
        let tat = keys.get(&key).copied().unwrap_or(now).max(now);
        let ahead = tat - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        keys.insert(key, tat + self.interval);
        Ok(())
    }

    fn release(&self, key: &FailureKey) {
        let mut keys = self.keys();
        if let Some(tat) = keys.get_mut(key) {
            *tat = tat.checked_sub(self.interval).unwrap_or(*tat);
        }
    }

    /// Forgets keys whose every unit is back.
    fn prune(&self, now: Instant) {
        let mut keys = self.keys();
        keys.retain(|_, tat| *tat > now);
        keys.shrink_to_fit();
    }
}

fn rate_limited(wait: Duration) -> Error {
    Error::rate_limited(
        Reason::SignInRateLimited,
        "too many sign-in attempts; retry later",
        wait,
    )
}

/// The one answer to every wrong credential.
fn invalid_credentials() -> Error {
    Error::unauthenticated(
        Reason::InvalidCredentials,
        "the workspace, email or password is not right",
    )
}

pub async fn sign_in(
    state: &AppState,
    request_id: &str,
    sign_in: SignIn,
) -> Result<SignedIn, Error> {
    let SignIn {
        workspace_id,
        email,
        password,
        client,
    } = sign_in;
    state.sign_in.admit(email.normalized(), client)?;
    let outcome = verify_and_sign_in(state, request_id, workspace_id, &email, password).await;
    // Only wrong credentials keep their reservation; a right password (even
    // a deactivated user's) or our own failure does not count against them.
    if !matches!(
        outcome,
        Err(Error::Unauthenticated {
            reason: Reason::InvalidCredentials,
            ..
        })
    ) {
        state.sign_in.not_a_failure(email.normalized(), client);
    }
    outcome
}

async fn verify_and_sign_in(
    state: &AppState,
    request_id: &str,
    workspace_id: Uuid,
    email: &EmailAddress,
    password: Password,
) -> Result<SignedIn, Error> {
    let found = {
        let client = state.pool.get().await?;
        users::credentials(&client, workspace_id, email.normalized()).await?
    };
    let (user, phc) = match found {
        Some((user, phc)) => (Some(user), Some(phc)),
        None => (None, None),
    };
    // The same argon2id work whether or not the user exists.
    let matches = state.hasher.verify_or_dummy(password, phc).await?;
    let user = match user {
        Some(user) if matches => user,
        _ => {
            tracing::info!(%workspace_id, "sign-in refused: invalid credentials");
            return Err(invalid_credentials());
        }
    };
    if user.status != UserStatus::Active {
        return Err(deactivated());
    }
    let (access_token, exp) = state
        .keys
        .mint_expiring(user.id, workspace_id, state.sign_in.access_token_ttl)
        .map_err(|e| Error::Unexpected(e.context("minting an access token")))?;
    let expires_at = OffsetDateTime::from_unix_timestamp(i64::try_from(exp).unwrap_or(i64::MAX))
        .map_err(|e| Error::Unexpected(anyhow::Error::new(e).context("token expiry")))?;

    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    // Deactivated meanwhile: refused like above.
    let user = users::mark_signed_in(&tx, workspace_id, user.id)
        .await?
        .ok_or_else(deactivated)?;
    record(
        &tx,
        Record {
            workspace_id,
            actor_id: Some(user.id),
            action: Action::UserSignedIn,
            target_user_id: Some(user.id),
            target_invitation_id: None,
            changes: Vec::new(),
            request_id,
        },
        events::user_changed(Action::UserSignedIn, &user, user.id, &[], request_id),
    )
    .await?;
    commit_and_wake(state, tx).await?;
    state.callers.forget_record(workspace_id, user.id);
    tracing::info!(user_id = %user.id, "signed in");
    Ok(SignedIn {
        access_token,
        expires_at,
        user,
    })
}

fn deactivated() -> Error {
    Error::denied(Reason::UserDeactivated, "the user is deactivated")
}

/// Notes that the caller is active: at most one write a minute per user, and
/// a failure to write never fails the call it rides on.
pub async fn note_activity(state: &AppState, caller: &Caller) {
    if !state.sign_in.activity_due(caller.user_id) {
        return;
    }
    let written = async {
        let client = state.pool.get().await?;
        users::touch_last_active(&client, caller.workspace_id, caller.user_id).await
    }
    .await;
    match written {
        Ok(true) => state
            .callers
            .forget_record(caller.workspace_id, caller.user_id),
        Ok(false) => {}
        Err(error) => tracing::warn!(error = ?error, "recording the caller's last activity"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(per_email: u32, per_address: u32) -> SignInPolicy {
        SignInPolicy::new(&SignInSettings {
            access_token_ttl: Duration::from_secs(900),
            attempts_per_email_per_minute: per_email,
            attempts_per_address_per_minute: per_address,
            trust_forwarded_for: false,
            trusted_proxy_hops: 1,
        })
    }

    #[test]
    fn ipv6_addresses_share_a_limit_per_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8:1:2:bbbb::9"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("an address");
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("an address");
        assert_eq!(address_key(mapped), IpAddr::from([192, 0, 2, 7]));
    }

    #[test]
    fn the_limits_refuse_with_a_wait_and_zero_turns_them_off() {
        let limited = policy(2, 0);
        assert!(limited.admit("a@example.com", None).is_ok());
        assert!(limited.admit("a@example.com", None).is_ok());
        match limited.admit("a@example.com", None) {
            Err(Error::ResourceExhausted { retry_after, .. }) => {
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(31));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(limited.admit("b@example.com", None).is_ok());
        let from = |last: u8| Some(IpAddr::from([192, 0, 2, last]));
        assert!(limited.admit("a@example.com", from(1)).is_ok());
        let open = policy(0, 0);
        for _ in 0..100 {
            assert!(open.admit("a@example.com", None).is_ok());
        }
    }

    #[test]
    fn a_released_reservation_does_not_count_and_units_come_back_evenly() {
        let limit = FailureLimit::per_minute(2);
        let key = || ("a@example.com".to_owned(), None);
        let start = Instant::now();
        for _ in 0..10 {
            limit
                .reserve(key(), start)
                .expect("released units never run out");
            limit.release(&key());
        }
        limit.reserve(key(), start).expect("first");
        limit.reserve(key(), start).expect("second");
        assert_eq!(limit.reserve(key(), start), Err(Duration::from_secs(30)));
        let later = start + Duration::from_secs(30);
        limit.reserve(key(), later).expect("one is back after 30 s");
        limit.prune(start + Duration::from_secs(91));
        assert!(limit.keys().is_empty());
    }
}
