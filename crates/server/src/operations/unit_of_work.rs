//! The one transaction skeleton of every change the service makes, so that
//! no operation can skip a step.
//!
//! A caller's mutation: begin → replay by request id → take the first lock
//! → re-read the caller and check the permission → the change (targets read
//! through [`Work`], which checks role rank) → activity entry + outbox event
//! → remember the result → commit. Written as plain calls:
//!
//! ```text
//! unit_of_work::run(state, caller, mutation, |work| async move {
//!     let changed = …;                                   // reads and writes through work.tx()
//!     let recorded = work.record(action, target, changes, event)?;
//!     work.finish(Outcome::Changed(changed, recorded)).await
//! })
//! ```
//!
//! [`run`] begins the unit ([`Work::begin`] answers `Fresh` work or the
//! `Replayed` first result of a retried request), hands fresh work to the
//! change, and runs it all once more after a deadlock. InviteUser calls
//! [`begin`] on its transaction itself, to send one more read beside it:
//!
//! ```text
//! let (begun, read) = tokio::join!(begin(&tx, caller, mutation), read(tx.client()));
//! let work = match begun? { Begun::Fresh(opened) => opened.with(state, tx), Begun::Replayed(first) => return Ok(first) };
//! ```
//!
//! An internal change (one no caller's permission governs: AcceptInvitation,
//! SignIn, SignOut, bootstrap, join requests, the sweeps) opens a bare
//! [`UnitOfWork`] and records who acted itself, in the same transaction
//! with the same writes kept for the commit and the same retry.
//!
//! Round trips are what a short transaction costs, so BEGIN, the replay
//! check, the first lock and the caller's re-read go out together, and the
//! writes nothing reads back (activity, outbox, the remembered result, an
//! invitation) wait to go out with the COMMIT (`store::pipeline`). A
//! deadlock or serialization failure runs the whole unit once more
//! ([`retrying`]); a second one reaches the caller as ABORTED, never
//! INTERNAL.

use std::{future::Future, sync::Mutex, time::Duration};

use serde::{Serialize, de::DeserializeOwned};
use time::OffsetDateTime;
use tracing::{Instrument, Span, field};
use uuid::Uuid;
use wowchat_platform::telemetry::{self, SpanKind};

use super::{AppState, Record, activity_entry, limits::Take, remember, replayed};
use crate::{
    auth::{Caller, caller::confirm},
    domain::{
        Error, Reason,
        activity::{Action, FieldChange},
        idempotency::IdempotencyKey,
        invitation::Invitation,
        permission::{CustomRole, Permission, Role},
        user::User,
        workspace::WorkspaceSettings,
    },
    store::{
        Client, Lock, invitations, outbox,
        pipeline::{PipelinedTransaction, Write},
        rate_limits, roles, users,
        workspaces::{self, LockedWorkspace},
    },
};

/// What a mutation is, as the unit of work needs to know it.
#[derive(Clone, Copy)]
pub(super) struct Mutation<'a> {
    /// The RPC's name: the namespace of its request ids.
    operation: &'static str,
    /// Checked before any work, and again against the caller as of now.
    permission: Permission,
    request_id: &'a str,
    idempotency: Option<&'a IdempotencyKey>,
    first_lock: FirstLock<'a>,
    /// Rate limit units the change takes, sent with BEGIN.
    limits: Limits<'a>,
}

impl<'a> Mutation<'a> {
    /// `operation` by a caller holding `permission`: no idempotency key, no
    /// first lock, no rate limit, unless said otherwise.
    pub fn new(operation: &'static str, permission: Permission, request_id: &'a str) -> Self {
        Mutation {
            operation,
            permission,
            request_id,
            idempotency: None,
            first_lock: FirstLock::Nothing,
            limits: Limits::NONE,
        }
    }

    /// Replays a retry that carries the same `key`.
    pub fn idempotent(self, key: Option<&'a IdempotencyKey>) -> Self {
        Mutation {
            idempotency: key,
            ..self
        }
    }

    /// Takes `first_lock` before the caller is re-read.
    pub fn locking(self, first_lock: FirstLock<'a>) -> Self {
        Mutation { first_lock, ..self }
    }

    /// Takes the units of `limits` with BEGIN.
    pub fn limited(self, limits: Limits<'a>) -> Self {
        Mutation { limits, ..self }
    }
}

/// Rate limit units a change takes in its transaction (so they come back
/// if it rolls back), and the error of a refusal.
#[derive(Clone, Copy)]
pub(super) struct Limits<'a> {
    pub takes: &'a [Take],
    pub refused: fn(Duration) -> Error,
}

impl Limits<'_> {
    /// A change no rate limit counts.
    pub const NONE: Limits<'static> = Limits {
        takes: &[],
        refused: |_| Error::Unexpected(anyhow::anyhow!("no limit to refuse")),
    };
}

/// What a mutation locks before the caller is re-read. Every mutation takes
/// its locks in the same order (this one, the caller, then its targets), so
/// none can deadlock another.
#[derive(Clone, Copy)]
pub(super) enum FirstLock<'a> {
    Nothing,
    /// The workspace's membership lock, exclusively, for rules that span
    /// users: the seat limit, the last owner, reporting cycles, the settings
    /// themselves. Every change of a user's role or status takes it.
    Workspace,
    /// The membership lock shared, so invitations run side by side while no
    /// membership change or settings update can; when a seat limit is set,
    /// seat-taking changes are serialized among themselves as well.
    Seats,
    /// A custom role about to change or be deleted: taken before the
    /// caller's own role is share-locked, so a caller holding it locks it
    /// once.
    CustomRole(&'a str),
}

impl FirstLock<'_> {
    /// How it holds the workspace's membership lock: `None` when it does not.
    fn membership_lock(self) -> Lock {
        match self {
            FirstLock::Workspace => Lock::Update,
            FirstLock::Seats => Lock::Share,
            FirstLock::Nothing | FirstLock::CustomRole(_) => Lock::None,
        }
    }
}

/// Proof that a change wrote its activity entry and event; only
/// [`Work::record`] makes one.
pub(super) struct Recorded(());

/// What a change did: a changed result must carry its [`Recorded`] proof.
pub(super) enum Outcome<T> {
    Changed(T, Recorded),
    /// Nothing needed changing; the result is remembered all the same.
    Unchanged(T),
}

impl<T> Outcome<T> {
    fn result(&self) -> &T {
        match self {
            Outcome::Changed(result, Recorded(())) | Outcome::Unchanged(result) => result,
        }
    }

    fn into_result(self) -> T {
        match self {
            Outcome::Changed(result, Recorded(())) | Outcome::Unchanged(result) => result,
        }
    }
}

/// Whom an activity entry is about.
pub(super) enum Target {
    User(Uuid),
    Invitation(Uuid),
    /// The workspace itself, or one of its roles.
    Workspace,
}

/// An open transaction and the writes kept for its commit: what every
/// change goes through, a caller's ([`Work`]) or an internal one.
pub(super) struct UnitOfWork<'a> {
    tx: PipelinedTransaction,
    relay_wakeup: &'a outbox::RelayWakeup,
    /// Sent with the COMMIT, in this order.
    writes: Mutex<Vec<Write>>,
    /// Sent with the COMMIT after `writes`, as one statement.
    outbox: Mutex<Vec<outbox::OutboxMessage>>,
}

impl<'a> UnitOfWork<'a> {
    /// Begins an internal change: one no caller's permission governs, so
    /// nothing is replayed, locked or checked first.
    pub async fn begin(state: &'a AppState) -> Result<Self, Error> {
        let unit = Self::over(state, PipelinedTransaction::new(state.connection().await?));
        unit.tx.begin().await?;
        Ok(unit)
    }

    fn over(state: &'a AppState, tx: PipelinedTransaction) -> Self {
        UnitOfWork {
            tx,
            relay_wakeup: &state.relay_wakeup,
            writes: Mutex::new(Vec::new()),
            outbox: Mutex::new(Vec::new()),
        }
    }

    /// The connection, inside the transaction.
    pub fn tx(&self) -> &Client {
        self.tx.client()
    }

    /// Keeps `write` to go out with the COMMIT; a failure fails the commit.
    pub fn write_at_commit(&self, write: Write) {
        self.writes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(write);
    }

    /// Queues a message for other services (an event, an email to send),
    /// written with the COMMIT.
    pub fn send(&self, message: outbox::OutboxMessage) {
        self.outbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(message);
    }

    /// Appends the activity entry `record` and the `event` announcing the
    /// change (at the commit).
    pub fn record(
        &self,
        record: Record<'_>,
        event: outbox::OutboxMessage,
    ) -> Result<Recorded, Error> {
        self.write_at_commit(activity_entry(record)?);
        self.send(event);
        Ok(Recorded(()))
    }

    /// Commits with every write kept for the commit; a change (its proof
    /// says it recorded itself) answers its result.
    pub async fn finish<T>(self, outcome: Outcome<T>) -> Result<T, Error> {
        self.commit_with(outcome.into_result(), None).await
    }

    /// Commits what was written, recorded or not (a check that took a rate
    /// limit's unit, a confirmation email sent before anything is recorded).
    pub async fn commit(self) -> Result<(), Error> {
        self.commit_with((), None).await
    }

    /// Commits with `last` after the kept writes; when outbox rows went out
    /// with it, then wakes the relays.
    async fn commit_with<T>(self, result: T, last: Option<Write>) -> Result<T, Error> {
        let mut writes = self
            .writes
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let messages = self
            .outbox
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let sends = !messages.is_empty();
        if sends {
            writes.push(outbox::insert_all(messages));
        }
        writes.extend(last);
        self.tx.commit(writes).await?;
        if sends {
            self.relay_wakeup.after_commit();
        }
        Ok(result)
    }
}

/// The open transaction of one caller's mutation, with the caller as of now.
pub(super) struct Work<'a> {
    unit: UnitOfWork<'a>,
    pub caller: Caller,
    pub request_id: &'a str,
    operation: &'static str,
    idempotency: Option<&'a IdempotencyKey>,
    locked_workspace: Option<LockedWorkspace>,
    locked_role: Option<CustomRole>,
}

impl<'a> Work<'a> {
    /// Begins the unit of work of `mutation` by `caller`: a retry of a
    /// request already done gets its first result instead.
    pub async fn begin<T: DeserializeOwned>(
        state: &'a AppState,
        caller: &Caller,
        mutation: Mutation<'a>,
    ) -> Result<Begun<Self, T>, Error> {
        let tx = PipelinedTransaction::new(state.connection().await?);
        Ok(match begin(&tx, caller, mutation).await? {
            Begun::Fresh(opened) => Begun::Fresh(opened.with(state, tx)),
            Begun::Replayed(first) => Begun::Replayed(first),
        })
    }

    /// The connection, inside the transaction.
    pub fn tx(&self) -> &Client {
        self.unit.tx()
    }

    /// What `now()` is in this transaction: read with the workspace when
    /// it was locked, else asked for.
    pub async fn now(&self) -> Result<OffsetDateTime, Error> {
        match &self.locked_workspace {
            Some(locked) => Ok(locked.now),
            None => self.unit.tx.now().await,
        }
    }

    /// Keeps `write` to go out with the COMMIT; a failure fails the commit.
    pub fn write_at_commit(&self, write: Write) {
        self.unit.write_at_commit(write);
    }

    /// Queues a message for other services, written with the COMMIT.
    pub fn send(&self, message: outbox::OutboxMessage) {
        self.unit.send(message);
    }

    pub fn workspace_id(&self) -> Uuid {
        self.caller.workspace_id
    }

    /// Appends the activity entry of the caller's change and the event
    /// announcing it (at the commit).
    pub fn record(
        &self,
        action: Action,
        target: Target,
        changes: Vec<FieldChange>,
        event: outbox::OutboxMessage,
    ) -> Result<Recorded, Error> {
        let (target_user_id, target_invitation_id) = match target {
            Target::User(id) => (Some(id), None),
            Target::Invitation(id) => (None, Some(id)),
            Target::Workspace => (None, None),
        };
        self.unit.record(
            Record {
                workspace_id: self.caller.workspace_id,
                actor_id: crate::events::Actor::from(&self.caller).user_id,
                actor_directory_token_id: self.caller.directory_token_id,
                action,
                target_user_id,
                target_invitation_id,
                changes,
                request_id: self.request_id,
            },
            event,
        )
    }

    /// Refuses to grant, or act on a holder of, a role above the caller's.
    pub fn require_not_below(&self, role: &Role) -> Result<(), Error> {
        self.caller.require_not_below(role)
    }

    /// The role a request names, share-locked so it cannot change or
    /// disappear before the request commits; an unknown one is invalid
    /// input of `field`. Refused when it is above the caller.
    pub async fn grantable_role(&self, field: &str, name: &str) -> Result<Role, Error> {
        let role = roles::resolve(self.tx(), self.workspace_id(), name, Lock::Share)
            .await?
            .ok_or_else(|| {
                Error::invalid_with(
                    Reason::RoleNotFound,
                    field,
                    format!("role {name:?} does not exist"),
                )
            })?;
        self.require_not_below(&role)?;
        Ok(role)
    }

    /// The invitation to change, locked until commit; one for a role above
    /// the caller's is refused (ROLE_ABOVE_CALLER).
    pub async fn invitation(&self, id: Uuid) -> Result<Invitation, Error> {
        let invitation = invitations::INVITATIONS
            .get(self.tx(), self.workspace_id(), id, Lock::Update)
            .await?
            .ok_or_else(Error::invitation_not_found)?;
        self.require_not_below(
            &roles::held(self.tx(), self.workspace_id(), &invitation.role, Lock::None).await?,
        )?;
        Ok(invitation)
    }

    /// The user to change and the role they hold, locked until commit; a
    /// holder of a role above the caller's is refused (ROLE_ABOVE_CALLER).
    pub async fn user(&self, id: Uuid) -> Result<(User, Role), Error> {
        let user = users::USERS
            .get(self.tx(), self.workspace_id(), id, Lock::Update)
            .await?
            .ok_or_else(Error::user_not_found)?;
        let role = self.role_of_target(&user).await?;
        Ok((user, role))
    }

    /// The role `user`, a target the caller read locked for update itself,
    /// holds; a holder of a role above the caller's is refused
    /// (ROLE_ABOVE_CALLER), as by [`Work::user`].
    pub async fn role_of_target(&self, user: &User) -> Result<Role, Error> {
        let role = roles::held(self.tx(), self.workspace_id(), &user.role, Lock::None).await?;
        self.require_not_below(&role)?;
        Ok(role)
    }

    /// The custom role taken by [`FirstLock::CustomRole`], checked not to be
    /// above the caller.
    pub fn locked_role(&self) -> Result<&CustomRole, Error> {
        let role = self
            .locked_role
            .as_ref()
            .ok_or_else(|| Error::Unexpected(anyhow::anyhow!("no custom role was locked")))?;
        self.require_not_below(&role.role)?;
        Ok(role)
    }

    /// The workspace's invitation settings (as read under the workspace
    /// lock when the mutation took it).
    pub async fn settings(&self) -> Result<WorkspaceSettings, Error> {
        match &self.locked_workspace {
            Some(locked) => Ok(locked.settings.clone()),
            None => workspaces::settings(self.tx(), self.workspace_id()).await,
        }
    }

    /// The workspace's name, for emails.
    pub async fn workspace_name(&self) -> Result<String, Error> {
        match &self.locked_workspace {
            Some(locked) => Ok(locked.name.clone()),
            None => workspaces::name(self.tx(), self.workspace_id()).await,
        }
    }
}

/// What beginning a caller's unit of work found.
pub(super) enum Begun<W, T> {
    /// A new request: its unit of work, the caller confirmed.
    Fresh(W),
    /// A retry of a request already done: its first result.
    Replayed(T),
}

/// A unit of work begun on a transaction, before it takes the transaction
/// back from reads sent beside the beginning (InviteUser's).
pub(super) struct Opened<'a> {
    caller: Caller,
    mutation: Mutation<'a>,
    locked_workspace: Option<LockedWorkspace>,
    locked_role: Option<CustomRole>,
}

impl<'a> Opened<'a> {
    pub fn with(self, state: &'a AppState, tx: PipelinedTransaction) -> Work<'a> {
        Work {
            unit: UnitOfWork::over(state, tx),
            caller: self.caller,
            request_id: self.mutation.request_id,
            operation: self.mutation.operation,
            idempotency: self.mutation.idempotency,
            locked_workspace: self.locked_workspace,
            locked_role: self.locked_role,
        }
    }
}

/// Runs `change` as the unit of work of `mutation` by `caller`: begins it
/// (a retry of a request already done answers its first result instead),
/// hands the fresh [`Work`] to `change`, which ends with
/// [`Work::finish`]; all of it once more after a deadlock or serialization
/// failure.
pub(super) async fn run<'a, T, F, Fut>(
    state: &'a AppState,
    caller: &'a Caller,
    mutation: Mutation<'a>,
    change: F,
) -> Result<T, Error>
where
    T: DeserializeOwned,
    F: Fn(Work<'a>) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    retrying(|| async {
        match Work::begin(state, caller, mutation).await? {
            Begun::Fresh(work) => change(work).await,
            Begun::Replayed(first) => Ok(first),
        }
    })
    .await
}

/// Runs `attempt` (one whole unit of work), once more after a deadlock or
/// serialization failure.
pub(super) async fn retrying<T, Fut>(attempt: impl Fn() -> Fut) -> Result<T, Error>
where
    Fut: Future<Output = Result<T, Error>>,
{
    match attempt().instrument(transaction_span()).await {
        Err(err) if err.is_concurrency_conflict() => {
            tracing::info!("concurrency conflict; running the unit of work again");
            attempt().instrument(transaction_span()).await
        }
        result => result,
    }
}

/// Postgres's part of a traced call: one span per transaction, the parent
/// of the outbox rows it writes. No span at all while traces are off.
fn transaction_span() -> Span {
    if !telemetry::enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        "postgres transaction",
        "db.system.name" = "postgresql",
        "otel.name" = field::Empty,
        "otel.kind" = field::Empty,
    );
    telemetry::describe_span(&span, SpanKind::Client, "postgres transaction");
    span
}

/// Begins the unit of work of `mutation` in `tx`: the transaction, the
/// replay of a retried request, the first lock, and the caller re-read as of
/// now with the permission checked again; in one round trip (Postgres runs
/// them in the order sent, so the caller is read under the lock).
pub(super) async fn begin<'a, T: DeserializeOwned>(
    tx: &PipelinedTransaction,
    caller: &Caller,
    mutation: Mutation<'a>,
) -> Result<Begun<Opened<'a>, T>, Error> {
    // A caller without the permission costs no database work.
    caller.require(mutation.permission)?;
    if let FirstLock::CustomRole(name) = mutation.first_lock
        && Role::builtin(name).is_some()
    {
        return Err(Error::precondition(
            Reason::RoleBuiltIn,
            format!("{name} is a built-in role: it cannot be changed or deleted"),
        ));
    }
    // Under the membership lock no role or status can change: the caller's
    // row needs no lock of its own (many requests of one caller
    // share-locking their row cost a multixact each).
    let membership_lock = mutation.first_lock.membership_lock();
    let user_lock = if membership_lock == Lock::None {
        Lock::Share
    } else {
        Lock::None
    };
    let db = tx.client();
    // The caller's unlocked re-read must go out behind the membership lock:
    // prepared now (once per connection), the lock is sent when first polled.
    if membership_lock != Lock::None {
        workspaces::prepare_lock(db, membership_lock).await?;
    }
    let (begun, replay, first_lock, confirmed, admitted) = tokio::join!(
        tx.begin(),
        replayed::<T>(db, caller, mutation.operation, mutation.idempotency),
        take_first_lock(db, caller.workspace_id, mutation.first_lock),
        // The caller's role and status as of now, not as of authentication.
        confirm(db, caller, user_lock),
        // After the first lock, so every change takes its locks in one order.
        take_limits(db, mutation.limits.takes),
    );
    begun?;
    if let Some(first) = replay? {
        return Ok(Begun::Replayed(first));
    }
    let (locked_workspace, locked_role) = first_lock?;
    let confirmed = confirmed?;
    confirmed.require(mutation.permission)?;
    admitted?.map_err(mutation.limits.refused)?;
    if let (FirstLock::Seats, Some(locked)) = (mutation.first_lock, &locked_workspace)
        && locked.settings.seat_limit > 0
    {
        workspaces::serialize_seat_changes(db, caller.workspace_id).await?;
    }
    Ok(Begun::Fresh(Opened {
        caller: confirmed,
        mutation,
        locked_workspace,
        locked_role,
    }))
}

/// Takes a unit of each limit, if any: no statement when there are none.
async fn take_limits(db: &Client, limits: &[Take]) -> Result<Result<(), Duration>, Error> {
    if limits.is_empty() {
        return Ok(Ok(()));
    }
    rate_limits::take(db, limits).await
}

/// Takes `first_lock`: the workspace read under the membership lock, or the
/// custom role locked for update.
async fn take_first_lock(
    db: &Client,
    workspace_id: Uuid,
    first_lock: FirstLock<'_>,
) -> Result<(Option<LockedWorkspace>, Option<CustomRole>), Error> {
    match first_lock {
        FirstLock::Nothing => Ok((None, None)),
        FirstLock::Workspace | FirstLock::Seats => Ok((
            Some(workspaces::lock(db, workspace_id, first_lock.membership_lock()).await?),
            None,
        )),
        FirstLock::CustomRole(name) => {
            let role = roles::get(db, workspace_id, name, Lock::Update)
                .await?
                .ok_or_else(|| {
                    Error::not_found(
                        Reason::RoleNotFound,
                        format!("no custom role named {name:?}"),
                    )
                })?;
            Ok((None, Some(role)))
        }
    }
}

impl Work<'_> {
    /// Remembers the result for retries and commits, with every write kept
    /// for the commit.
    pub async fn finish<T: Serialize>(self, outcome: Outcome<T>) -> Result<T, Error> {
        let remembered = remember(
            &self.caller,
            self.operation,
            self.idempotency,
            outcome.result(),
        )?;
        self.unit
            .commit_with(outcome.into_result(), remembered)
            .await
    }
}
