//! Verified domains: an owner claims a mail domain, publishes the TXT
//! record the claim names, and verifies it; a verified domain belongs to one
//! workspace at most and is re-checked until its record goes (it lapses).
//! Its enrollment mode says what an address there may do alone: nothing
//! (`MANUAL`), get an invitation (`INVITE`), or make a join request
//! (`SUGGEST`), through the public JoinByEmail, whose answer is the same
//! whatever exists.

use std::{net::IpAddr, sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    AppState, Page, PageRequest, Record,
    invitations::invite_via,
    join_requests::{self, Source},
    unit_of_work::{self, Mutation, Outcome, Recorded, Target, UnitOfWork, Work, retrying},
};
use crate::{
    auth::{Caller, caller::acting_as},
    dns::TxtAnswer,
    domain::{
        Error, Reason,
        activity::{Action, FieldChange},
        invitation::{NewInvitation, Validity},
        joining::NewJoinRequest,
        mail_domain::{
            DomainStatus, DomainUpdate, EnrollmentMode, JoinByEmail, MailDomain, domain_of,
            is_free_mail, verification_code,
        },
        pagination::Cursor,
        permission::Permission,
    },
    events,
    store::{Lock, mail_domains},
};

fn not_found() -> Error {
    Error::not_found(Reason::DomainNotFound, "no such domain in this workspace")
}

fn record_change(
    work: &Work<'_>,
    action: Action,
    domain: &MailDomain,
    mut changes: Vec<FieldChange>,
) -> Result<Recorded, Error> {
    changes.insert(0, FieldChange::new("domain", "", &domain.domain));
    let event = events::domain_changed(action, domain, Some(work.caller.user_id), work.request_id);
    work.record(action, Target::Workspace, changes, event)
}

fn mutation<'a>(operation: &'static str, request_id: &'a str) -> Mutation<'a> {
    Mutation::new(operation, Permission::WorkspaceManage, request_id)
}

/// Claims `domain` (already a valid name) for the caller's workspace: the
/// claim names the TXT record to publish.
pub async fn add(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    domain: String,
) -> Result<MailDomain, Error> {
    caller.require(Permission::WorkspaceManage)?;
    if is_free_mail(&domain) {
        return Err(Error::invalid_with(
            Reason::DomainNotVerifiable,
            "domain",
            "is a consumer or disposable mail domain: anyone may have an address there",
        ));
    }
    let domain = &domain;
    unit_of_work::run(
        state,
        caller,
        mutation("AddDomain", request_id),
        |work| async move {
            let claimed = mail_domains::insert(
                work.tx(),
                work.workspace_id(),
                Uuid::now_v7(),
                domain,
                &verification_code(),
                work.caller.user_id,
            )
            .await?
            .map_err(|_| Error::AlreadyExists {
                reason: Reason::DomainExists,
                message: format!("the workspace already claimed {domain}"),
            })?;
            let recorded = record_change(&work, Action::DomainAdded, &claimed, vec![])?;
            work.finish(Outcome::Changed(claimed, recorded)).await
        },
    )
    .await
}

/// Looks the claim's record up now and marks it verified if it is there.
pub async fn verify(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    domain_id: Uuid,
) -> Result<MailDomain, Error> {
    let claim = get(state, caller, domain_id).await?;
    match claim.status {
        DomainStatus::Expired => {
            return Err(Error::precondition(
                Reason::DomainClaimExpired,
                "the claim expired before its record was found; remove it and add the domain again",
            ));
        }
        DomainStatus::Pending | DomainStatus::Lapsed | DomainStatus::Verified => {}
    }
    // Outside any transaction: DNS may take seconds.
    let proved = match state.dns.txt(&claim.record_name()).await {
        Ok(TxtAnswer::Found(values)) => claim.is_proved_by(&values),
        Ok(TxtAnswer::Missing) => false,
        Err(failed) => return Err(Error::Unavailable(anyhow::Error::new(failed))),
    };
    if !proved {
        return Err(Error::precondition(
            Reason::DomainRecordNotFound,
            format!(
                "no TXT record {} with the value {} was found; publish it and verify again",
                claim.record_name(),
                claim.record_value()
            ),
        ));
    }
    unit_of_work::run(
        state,
        caller,
        mutation("VerifyDomain", request_id),
        |work| async move {
            let current = mail_domains::DOMAINS
                .get(work.tx(), work.workspace_id(), domain_id, Lock::Update)
                .await?
                .ok_or_else(not_found)?;
            if current.status == DomainStatus::Verified {
                return work.finish(Outcome::Unchanged(current)).await;
            }
            let verified = mail_domains::mark_verified(work.tx(), work.workspace_id(), domain_id)
                .await?
                .map_err(|_| {
                    Error::precondition(
                        Reason::DomainVerifiedElsewhere,
                        "another workspace has verified this domain",
                    )
                })?;
            let changes = vec![FieldChange::new(
                "status",
                current.status.as_str(),
                "VERIFIED",
            )];
            let recorded = record_change(&work, Action::DomainVerified, &verified, changes)?;
            work.finish(Outcome::Changed(verified, recorded)).await
        },
    )
    .await
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    update: DomainUpdate,
) -> Result<MailDomain, Error> {
    let update = &update;
    unit_of_work::run(
        state,
        caller,
        mutation("UpdateDomain", request_id),
        |work| async move {
            let current = mail_domains::DOMAINS
                .get(work.tx(), work.workspace_id(), update.id, Lock::Update)
                .await?
                .ok_or_else(not_found)?;
            let mode = update.enrollment_mode.unwrap_or(current.enrollment_mode);
            let role = match &update.default_role {
                // Nobody lets strangers in with a role above their own.
                Some(name) => work.grantable_role("default_role", name).await?.name,
                None => current.default_role.clone(),
            };
            if mode == current.enrollment_mode && role == current.default_role {
                return work.finish(Outcome::Unchanged(current)).await;
            }
            let updated =
                mail_domains::update(work.tx(), work.workspace_id(), update.id, mode, &role)
                    .await?;
            let mut changes = Vec::new();
            if mode != current.enrollment_mode {
                changes.push(FieldChange::new(
                    "enrollment_mode",
                    current.enrollment_mode.as_str(),
                    mode.as_str(),
                ));
            }
            if role != current.default_role {
                changes.push(FieldChange::new(
                    "default_role",
                    &current.default_role,
                    &role,
                ));
            }
            let recorded = record_change(&work, Action::DomainUpdated, &updated, changes)?;
            work.finish(Outcome::Changed(updated, recorded)).await
        },
    )
    .await
}

pub async fn remove(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    domain_id: Uuid,
) -> Result<MailDomain, Error> {
    unit_of_work::run(
        state,
        caller,
        mutation("RemoveDomain", request_id),
        |work| async move {
            let current = mail_domains::DOMAINS
                .get(work.tx(), work.workspace_id(), domain_id, Lock::Update)
                .await?
                .ok_or_else(not_found)?;
            mail_domains::delete(work.tx(), work.workspace_id(), domain_id).await?;
            let recorded = record_change(&work, Action::DomainRemoved, &current, vec![])?;
            work.finish(Outcome::Changed(current, recorded)).await
        },
    )
    .await
}

pub async fn get(state: &AppState, caller: &Caller, domain_id: Uuid) -> Result<MailDomain, Error> {
    caller.require(Permission::WorkspaceManage)?;
    let client = state.connection().await?;
    mail_domains::DOMAINS
        .get(&client, caller.workspace_id, domain_id, Lock::None)
        .await?
        .ok_or_else(not_found)
}

pub async fn list(
    state: &AppState,
    caller: &Caller,
    page: PageRequest,
) -> Result<Page<MailDomain>, Error> {
    let (page, client) = page
        .open(state, caller, Permission::WorkspaceManage, "mail_domains")
        .await?;
    let (items, total) = mail_domains::list(&client, caller.workspace_id, page.window()).await?;
    Ok(page.page(items, total, |domain| {
        Cursor::new(domain.created_at, domain.id)
    }))
}

/// A stranger asks to join by their address. Whatever the domain's mode
/// (or whether any workspace verified it), the answer is an empty OK; only
/// the email that follows, if any, tells the address's owner more.
pub async fn join_by_email(
    state: &AppState,
    request_id: &str,
    join: JoinByEmail,
    client_address: Option<IpAddr>,
) -> Result<(), Error> {
    let domain = {
        let client = state.connection().await?;
        state
            .joining
            .admit(&state.limits, &client, client_address, None)
            .await?;
        let name = domain_of(&join.email);
        if is_free_mail(name) {
            return Ok(());
        }
        match mail_domains::verified(&client, name).await? {
            Some(domain) => domain,
            None => return Ok(()),
        }
    };
    let outcome = match domain.enrollment_mode {
        EnrollmentMode::Manual => return Ok(()),
        EnrollmentMode::Suggest => {
            join_requests::ask(
                state,
                request_id,
                NewJoinRequest {
                    workspace_id: domain.workspace_id,
                    email: join.email,
                    display_name: join.display_name,
                    message: join.message,
                },
                Source::Domain(&domain),
            )
            .await
        }
        EnrollmentMode::Invite => invite_by_domain(state, request_id, &domain, join).await,
    };
    match outcome {
        Ok(()) => Ok(()),
        // A lost database, or the stranger's own limit: theirs to know.
        Err(
            err @ (Error::Unavailable(_)
            | Error::ResourceExhausted {
                reason: Reason::JoiningRateLimited,
                ..
            }),
        ) => Err(err),
        // Told to nobody: what they would say belongs to the workspace.
        Err(quiet) => {
            tracing::info!(domain_id = %domain.id, reason = %quiet, "join by email: nothing sent");
            Ok(())
        }
    }
}

/// An invitation with the domain's default role, in the name of the owner
/// who claimed it (as they stand now).
async fn invite_by_domain(
    state: &AppState,
    request_id: &str,
    domain: &MailDomain,
    join: JoinByEmail,
) -> Result<(), Error> {
    let inviter = acting_as(
        &state.pool,
        &state.callers,
        domain.workspace_id,
        domain.created_by,
    )
    .await?;
    let new = NewInvitation {
        email: join.email,
        role: domain.default_role.clone(),
        reporting_to: None,
        message: String::new(),
        valid_for: Validity::DEFAULT,
        access_expires_at: None,
        idempotency: None,
        locale: None,
    };
    invite_via(state, &inviter, request_id, new, None).await?;
    Ok(())
}

/// Re-checks every verified domain once per `interval` until `shutdown`:
/// a domain whose record is gone lapses (an activity entry without actor,
/// a `domain.lapsed` event); a lookup that fails is tried at the next round.
pub async fn run_rechecks(state: Arc<AppState>, interval: Duration, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match recheck_due(&state, interval).await {
            Ok(0) => {}
            Ok(lapsed) => tracing::info!(domains = lapsed, "verified domains lapsed"),
            Err(err) => tracing::warn!(error = %err, "domain re-check failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval.min(Duration::from_secs(60))) => {}
        }
    }
}

/// Re-checks the verified domains last checked more than `interval` ago,
/// one transaction each (its row locked, so replicas share the work);
/// how many lapsed.
pub async fn recheck_due(state: &AppState, interval: Duration) -> Result<usize, Error> {
    let mut lapsed = 0;
    let due_before =
        time::OffsetDateTime::now_utc() - time::Duration::try_from(interval).unwrap_or_default();
    loop {
        match retrying(|| recheck_one(state, due_before)).await? {
            None => return Ok(lapsed),
            Some(Recheck::Lapsed) => lapsed += 1,
            Some(Recheck::Held) => {}
        }
    }
}

/// What re-checking one domain found.
enum Recheck {
    Held,
    Lapsed,
}

/// Re-checks the domain due longest, if any, in a transaction of its own.
async fn recheck_one(
    state: &AppState,
    due_before: time::OffsetDateTime,
) -> Result<Option<Recheck>, Error> {
    let unit = UnitOfWork::begin(state).await?;
    let Some(domain) = mail_domains::due_for_recheck(unit.tx(), due_before, 1)
        .await?
        .pop()
    else {
        return Ok(None);
    };
    let present = match state.dns.txt(&domain.record_name()).await {
        Ok(TxtAnswer::Found(values)) => domain.is_proved_by(&values),
        Ok(TxtAnswer::Missing) => false,
        Err(failed) => {
            // Not a no: checked again at the next round.
            tracing::warn!(error = %failed, domain_id = %domain.id, "domain re-check lookup failed");
            true
        }
    };
    let checked =
        mail_domains::mark_checked(unit.tx(), domain.workspace_id, domain.id, present).await?;
    if present {
        unit.commit().await?;
        return Ok(Some(Recheck::Held));
    }
    let changes = vec![
        FieldChange::new("domain", "", &checked.domain),
        FieldChange::new("status", "VERIFIED", "LAPSED"),
    ];
    let recorded = unit.record(
        Record {
            workspace_id: checked.workspace_id,
            actor_id: None,
            actor_directory_token_id: None,
            action: Action::DomainLapsed,
            target_user_id: None,
            target_invitation_id: None,
            changes,
            request_id: "",
        },
        events::domain_changed(Action::DomainLapsed, &checked, None, ""),
    )?;
    unit.finish(Outcome::Changed(Some(Recheck::Lapsed), recorded))
        .await
}
