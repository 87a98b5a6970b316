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
//! Attempts are limited across every replica (`limits`: shared GCRA
//! buckets in Postgres, failing closed), and an attempt over a limit costs
//! no hashing at all:
//! - per client address, every attempt counts;
//! - per email *and* client address, only wrong credentials count: each
//!   attempt reserves a unit before hashing (so concurrent guesses, on any
//!   replicas, cannot all slip through) and gets it back unless its
//!   credentials were wrong. Keyed by the address too, so guesses from
//!   elsewhere cannot lock the owner of an email out, and a right password
//!   never uses the budget;
//! - per account (workspace and email), across every address, wrong
//!   credentials count too (30 an hour by default), reserved the same way:
//!   many addresses (a botnet, IPv6 /64s) get that many guesses in all, not
//!   per address. An address that signed in to the account successfully
//!   within the last 30 days is not held to it (OWASP's device cookie, keyed
//!   by address), so the owner is never locked out by strangers; anyone
//!   else over it gets SIGN_IN_RATE_LIMITED with RetryInfo.

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    AppState, Record,
    limits::{Limit, SharedLimits, Take, address_bytes},
    unit_of_work::{Outcome, UnitOfWork, retrying},
};
use crate::{
    auth::Caller,
    domain::{
        EmailAddress, Error, Reason,
        activity::{Action, FieldChange},
        user::{Password, User, UserStatus},
    },
    events,
    store::{Lock, rate_limits, users},
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
    /// Failed attempts per hour at one account from every address but its
    /// known ones; 0 turns the limit off.
    pub failures_per_account_per_hour: u32,
    /// How long an address that signed in successfully stays known.
    pub known_address_window: Duration,
    /// Take the client address from `x-forwarded-for`: only behind proxies
    /// that append to it.
    pub trust_forwarded_for: bool,
    /// How many proxies append to `x-forwarded-for` in front of the service:
    /// the client is the entry that many hops from the right (the TCP peer
    /// being the nearest proxy). Entries further left are the caller's own.
    pub trusted_proxy_hops: u32,
}

/// Prunes idle entries of the last-active throttle once per this many
/// calls, so its memory stays bounded by the recent callers.
const PRUNE_EVERY: u64 = 4096;

/// The sign-in policy: token lifetime, attempt limits, and the throttle of
/// last-active writes.
pub struct SignInPolicy {
    pub access_token_ttl: Duration,
    pub trust_forwarded_for: bool,
    pub trusted_proxy_hops: u32,
    /// Failed attempts per email from one address (shared by every replica).
    failures: Limit,
    /// Every attempt per address (shared by every replica).
    by_address: Limit,
    /// Failed attempts per account from unknown addresses (shared).
    by_account: Limit,
    known_address_window: Duration,
    /// One last-active write per user and minute from this replica: not a
    /// limit on anyone, a saving of writes, so it stays in memory (the
    /// write itself is skipped by Postgres when another replica did it).
    activity: DefaultKeyedRateLimiter<Uuid>,
    checks: std::sync::atomic::AtomicU64,
}

impl SignInPolicy {
    pub fn new(settings: &SignInSettings) -> Self {
        SignInPolicy {
            access_token_ttl: settings.access_token_ttl,
            trust_forwarded_for: settings.trust_forwarded_for,
            trusted_proxy_hops: settings.trusted_proxy_hops,
            failures: Limit::per_minute(
                "sign_in.failures_by_email_and_address",
                settings.attempts_per_email_per_minute,
            ),
            by_address: Limit::per_minute(
                "sign_in.attempts_by_address",
                settings.attempts_per_address_per_minute,
            ),
            by_account: Limit::per_hour(
                "sign_in.failures_by_account",
                settings.failures_per_account_per_hour,
            ),
            known_address_window: settings.known_address_window,
            activity: RateLimiter::keyed(Quota::per_minute(NonZeroU32::MIN)),
            checks: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Counts an attempt against the address limit and reserves a failure of
    /// `email` from there and, unless the address is known to the account,
    /// of the account; over any, refused with how long to wait. The
    /// reservations, to give back unless the credentials were wrong.
    async fn admit(
        &self,
        state: &AppState,
        account: &Account<'_>,
        client: Option<IpAddr>,
    ) -> Result<Admitted, Error> {
        let limits: &SharedLimits = &state.limits;
        let address = client.map(address_bytes);
        let by_address = self.by_address.only_if(address.is_some());
        let known = match (&address, self.by_account.is_off()) {
            (Some(address), false) => Some(account.address_key(limits, address).await?),
            _ => None,
        };
        let address = address.unwrap_or_default();
        let workspace = account.workspace_id.as_bytes().as_slice();
        let email = account.email.as_bytes();
        let mut takes = limits
            .takes(&[
                (by_address, &[&address]),
                (self.failures, &[email, &address]),
                (self.by_account, &[workspace, email]),
            ])
            .await?;
        if takes.is_empty() {
            return Ok(Admitted {
                reserved: Vec::new(),
                address_key: known,
            });
        }
        let db = state.connection().await?;
        if let Some(known) = &known
            && rate_limits::is_known_address(&db, known, self.known_address_window).await?
        {
            takes.retain(|take| take.limit != self.by_account.name());
        }
        limits.take(&db, &takes).await?.map_err(rate_limited)?;
        let reserved = [self.failures.name(), self.by_account.name()];
        Ok(Admitted {
            reserved: takes
                .into_iter()
                .filter(|take| reserved.contains(&take.limit))
                .collect(),
            address_key: known,
        })
    }

    /// Notes that the address of `key` (from [`Admitted`]) signed in to its
    /// account: it is known from now on.
    async fn remember(&self, state: &AppState, key: Option<[u8; 32]>) {
        let Some(key) = key else {
            return;
        };
        let remembered = async {
            let db = state.connection().await?;
            rate_limits::remember_address(&db, &key).await
        }
        .await;
        if let Err(error) = remembered {
            tracing::warn!(error = ?error, "remembering a sign-in address");
        }
    }

    /// True at most once a minute per user on this replica.
    fn activity_due(&self, user_id: Uuid) -> bool {
        use std::sync::atomic::Ordering;
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.activity.retain_recent();
            self.activity.shrink_to_fit();
        }
        self.activity.check_key(&user_id).is_ok()
    }
}

fn rate_limited(wait: Duration) -> Error {
    Error::rate_limited(
        Reason::SignInRateLimited,
        "too many sign-in attempts; retry later",
        wait,
    )
}

/// An attempt let through: the units to give back unless its credentials
/// were wrong, and the digest of its account and address (when the
/// per-account limit is on and the address known) to remember on success.
struct Admitted {
    reserved: Vec<Take>,
    address_key: Option<[u8; 32]>,
}

/// The account an attempt is at: a workspace and a normalized email.
struct Account<'a> {
    workspace_id: Uuid,
    email: &'a str,
}

impl Account<'_> {
    /// The digest of this account and an address, as the store keeps it.
    async fn address_key(&self, limits: &SharedLimits, address: &[u8]) -> Result<[u8; 32], Error> {
        limits
            .digest(
                "sign_in.known_address",
                &[self.workspace_id.as_bytes(), self.email.as_bytes(), address],
            )
            .await
    }
}

/// Gives a reserved failure back; when that fails, the unit comes back by
/// itself within the minute, so the sign-in is not failed for it.
async fn give_back(state: &AppState, reserved: &Take) {
    let given = async {
        let db = state.connection().await?;
        state.limits.give_back(&db, reserved).await
    }
    .await;
    if let Err(error) = given {
        tracing::warn!(error = ?error, "giving back a sign-in failure reservation");
    }
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
    let account = Account {
        workspace_id,
        email: email.normalized(),
    };
    let Admitted {
        reserved,
        address_key,
    } = state.sign_in.admit(state, &account, client).await?;
    let outcome = verify_and_sign_in(state, request_id, workspace_id, &email, password).await;
    // Only wrong credentials keep their reservation; a right password (even
    // a deactivated user's) or our own failure does not count against them.
    let wrong_credentials = matches!(
        outcome,
        Err(Error::Unauthenticated {
            reason: Reason::InvalidCredentials,
            ..
        })
    );
    if !wrong_credentials {
        for reserved in &reserved {
            give_back(state, reserved).await;
        }
    }
    if outcome.is_ok() {
        state.sign_in.remember(state, address_key).await;
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
    if user.access_expired_at(OffsetDateTime::now_utc()) {
        return Err(access_expired());
    }
    let (access_token, exp) = state
        .keys
        .mint_expiring(user.id, workspace_id, state.sign_in.access_token_ttl)
        .map_err(|e| Error::Unexpected(e.context("minting an access token")))?;
    let expires_at = OffsetDateTime::from_unix_timestamp(i64::try_from(exp).unwrap_or(i64::MAX))
        .map_err(|e| Error::Unexpected(anyhow::Error::new(e).context("token expiry")))?;

    let user = retrying(|| async {
        let unit = UnitOfWork::begin(state).await?;
        // Deactivated meanwhile: refused like above.
        let user = users::mark_signed_in(unit.tx(), workspace_id, user.id)
            .await?
            .ok_or_else(deactivated)?;
        let recorded = unit.record(
            Record {
                workspace_id,
                actor_id: Some(user.id),
                actor_directory_token_id: None,
                action: Action::UserSignedIn,
                target_user_id: Some(user.id),
                target_invitation_id: None,
                changes: Vec::new(),
                request_id,
            },
            events::user_changed(Action::UserSignedIn, &user, user.id, &[], request_id),
        )?;
        unit.finish(Outcome::Changed(user, recorded)).await
    })
    .await?;
    state.callers.forget_record(workspace_id, user.id);
    tracing::info!(user_id = %user.id, "signed in");
    Ok(SignedIn {
        access_token,
        expires_at,
        user,
    })
}

/// Signs the caller out everywhere: their tokens issued before this second
/// are refused from the next call on, on every replica (the caller cache
/// hears of it before this returns). When the sessions ended.
pub async fn sign_out(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
) -> Result<OffsetDateTime, Error> {
    let ended = retrying(|| async {
        let unit = UnitOfWork::begin(state).await?;
        let ended = users::end_sessions(unit.tx(), caller.workspace_id, caller.user_id)
            .await?
            .ok_or_else(Error::user_not_found)?;
        let user = users::USERS
            .get(unit.tx(), caller.workspace_id, caller.user_id, Lock::None)
            .await?
            .ok_or_else(Error::user_not_found)?;
        let changes = vec![FieldChange::sessions_ended(ended)];
        let event =
            events::user_changed(Action::UserSignedOut, &user, user.id, &changes, request_id);
        // Any signed-in caller may sign themselves out: no permission to check.
        let recorded = unit.record(
            Record {
                workspace_id: caller.workspace_id,
                actor_id: Some(caller.user_id),
                actor_directory_token_id: None,
                action: Action::UserSignedOut,
                target_user_id: Some(caller.user_id),
                target_invitation_id: None,
                changes,
                request_id,
            },
            event,
        )?;
        unit.finish(Outcome::Changed(ended, recorded)).await
    })
    .await?;
    state.callers.sync(&state.pool).await;
    tracing::info!(user_id = %caller.user_id, "signed out everywhere");
    Ok(ended)
}

fn deactivated() -> Error {
    Error::denied(Reason::UserDeactivated, "the user is deactivated")
}

fn access_expired() -> Error {
    Error::denied(
        Reason::UserAccessExpired,
        "the user's access has ended; an administrator may extend it",
    )
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
