//! InviteUser at 32 calls in flight, spread over 16 workspaces and within
//! one, each next to pgbench running the minimal transaction an invitation
//! needs over the same workspaces at the same concurrency: BEGIN, the
//! invitation, its activity entry and its two outbox rows (the
//! `invitation.created` event and the mail command), COMMIT, each statement
//! in turn as a pgbench script sends them. The server's work beyond that
//! (authentication, permission and policy checks, idempotency) is what the
//! ratio shows. A second row sets the same calls beside the least that work
//! can cost: one statement writing it all, committed on its own.
//!
//! With the per-recipient cap on (`WOWCHAT_INVITES_PER_DAY_PER_RECIPIENT`,
//! 10 by default), an invitation must also record its send against the
//! address: both ceilings then write the address's counter row too, the
//! least that rule can cost (one upsert of `rate_limits`).

use std::sync::Arc;

use anyhow::Context;
use wowchat_users_api::v1::{InviteUserRequest, user_service_client::UserServiceClient};

use crate::{
    Common,
    load::{self, Bearer},
    pgbench::{self, Script},
    report::{Ceiling, Measurement, Target},
    service::{self, Workspace},
};

const IN_FLIGHT: usize = 32;
const WORKSPACES: usize = 16;

/// Issue 7, target 3: 3,000/s over 16 workspaces, 1,500/s within one, and
/// at least 0.8 times the minimal transaction's rate.
const SPREAD_TARGET: Target = Target {
    min_ratio: Some(0.8),
    max_ratio: None,
    min_throughput: Some(3000.0),
    max_p99: None,
};
const ONE_WORKSPACE_TARGET: Target = Target {
    min_throughput: Some(1500.0),
    ..SPREAD_TARGET
};

pub async fn run(common: &Common) -> anyhow::Result<Vec<Measurement>> {
    service::with_service(common, &[], async |scratch, service| {
        let mut workspaces = Vec::with_capacity(WORKSPACES);
        for i in 0..WORKSPACES {
            workspaces.push(service.workspace(&format!("invite-{i}")).await?);
        }
        let channels = load::connect(&service.address).await?;
        let run = common.run(IN_FLIGHT);
        let mut rows = Vec::new();
        for (name, workspaces, target) in [
            ("invite: 16 workspaces", &workspaces[..], SPREAD_TARGET),
            (
                "invite: one workspace",
                &workspaces[..1],
                ONE_WORKSPACE_TARGET,
            ),
        ] {
            eprintln!("{name}: InviteUser, {IN_FLIGHT} in flight");
            let owners: Arc<Vec<Bearer>> =
                Arc::new(workspaces.iter().map(|w| w.owner.clone()).collect());
            // Steady state: statistics of tables with data, so the plans the
            // server caches are not those of the empty tables it started on.
            load::drive(
                &channels,
                IN_FLIGHT,
                run.warm_up,
                invite_call(owners.clone()),
            )
            .await?;
            scratch.analyze().await?;
            let outcome = run.measure(&channels, invite_call(owners)).await?;
            eprintln!("{name}: pgbench of the minimal transaction");
            let recipient_cap = recipient_cap_is_on();
            let scripts: Vec<Script> = workspaces
                .iter()
                .map(|w| minimal_transaction(w, recipient_cap))
                .collect();
            let ceiling = pgbench::tps(scratch, &scripts, IN_FLIGHT, run.duration).await?;
            rows.push(Measurement::of_calls(
                name,
                &outcome,
                Some(Ceiling::Throughput(ceiling)),
                target,
            ));
            eprintln!("{name}: pgbench of the same writes as one statement");
            let scripts: Vec<Script> = workspaces
                .iter()
                .map(|w| one_statement(w, recipient_cap))
                .collect();
            let least = pgbench::tps(scratch, &scripts, IN_FLIGHT, run.duration).await?;
            rows.push(Measurement::of_calls(
                format!("{name}, vs one statement"),
                &outcome,
                Some(Ceiling::Throughput(least)),
                Target::default(),
            ));
        }
        Ok(rows)
    })
    .await
}

/// Each call: the owner of one of the workspaces, in turn, invites an email
/// never invited before.
fn invite_call(owners: Arc<Vec<Bearer>>) -> impl load::Caller {
    move |channel, n| {
        let owner = &owners[n as usize % owners.len()];
        let request = owner.request(InviteUserRequest {
            email: format!("new.colleague.{n}@invitees.example.com"),
            role: "agent".into(),
            message: "Welcome aboard! You will be answering the support inbox with us.".into(),
            ..Default::default()
        });
        Box::pin(async move {
            UserServiceClient::new(channel)
                .invite_user(request)
                .await
                .context("InviteUser")?;
            Ok(())
        })
    }
}

/// Whether the server the scenario starts caps invitation emails per
/// recipient: its setting, from the environment the server inherits.
fn recipient_cap_is_on() -> bool {
    std::env::var("WOWCHAT_INVITES_PER_DAY_PER_RECIPIENT")
        .ok()
        .and_then(|value| value.parse::<u32>().ok())
        .unwrap_or(wowchat_users_server::config::Settings::defaults().invites_per_day_per_recipient)
        > 0
}

/// The address's daily counter as the cap keeps it: one upsert of a new
/// key (each invitation is to a new address), or nothing with the cap off.
fn recipient_counter(recipient_cap: bool, statement_end: &str) -> String {
    if !recipient_cap {
        return String::new();
    }
    format!(
        "INSERT INTO rate_limits AS l (name, key, tat) \
         VALUES ('invitations.sends_to_recipient', sha256(uuid_send(gen_random_uuid())), \
           clock_timestamp() + interval '8640 seconds') \
         ON CONFLICT (name, key) DO UPDATE SET tat = greatest(l.tat, clock_timestamp()) \
           + interval '8640 seconds'{statement_end}"
    )
}

/// The minimal transaction of an invitation, as a pgbench script: the
/// invitation, its activity entry and its two outbox rows (payloads of the
/// real messages' size), and the address's counter when the cap is on, one
/// statement each, between BEGIN and COMMIT.
fn minimal_transaction(workspace: &Workspace, recipient_cap: bool) -> Script {
    let (workspace_id, inviter) = (workspace.id, workspace.owner_id);
    Script {
        name: format!("invite-transaction-{workspace_id}"),
        sql: format!(
            "BEGIN;\n\
             {counter}\
             {invitation} \\gset\n\
             INSERT INTO activity (workspace_id, id, occurred_at, actor_id, action, \
               target_invitation_id, request_id) \
             VALUES ('{workspace_id}', gen_random_uuid(), now(), '{inviter}', \
               'invitation.created', :invitation_id, gen_random_uuid()::text);\n\
             {event}\
             {command}\
             COMMIT;\n",
            counter = recipient_counter(recipient_cap, ";\n"),
            invitation = insert_invitation(
                workspace,
                "RETURNING id AS invitation_id, mail_message_id AS mail_id"
            ),
            event = outbox_row(
                workspace_id,
                "gen_random_uuid()",
                "invitation.created",
                "wowchat.users.events.v1.InvitationCreated",
                300
            ),
            command = outbox_row(
                workspace_id,
                ":mail_id",
                "mail.invitation",
                "wowchat.users.events.v1.SendInvitationEmail",
                500
            ),
        ),
    }
}

/// The invitation's insert, as `InviteUser` writes it (a new email each
/// time), ending with `returning`.
fn insert_invitation(workspace: &Workspace, returning: &str) -> String {
    let (workspace_id, inviter) = (workspace.id, workspace.owner_id);
    format!(
        "INSERT INTO invitations (workspace_id, id, email, email_normalized, role, inviter_id, \
           message, status, token_hash, expires_at, last_sent_at, created_at, updated_at, \
           mail_message_id) \
         SELECT '{workspace_id}', v.id, v.email, v.email, 'agent', '{inviter}', \
           'Welcome aboard! You will be answering the support inbox with us.', 'PENDING', \
           sha256(uuid_send(gen_random_uuid())), now() + interval '7 days', now(), now(), now(), \
           v.mail_id \
         FROM (SELECT gen_random_uuid() AS id, gen_random_uuid() AS mail_id, \
           'new.colleague.' || gen_random_uuid() || '@invitees.example.com' AS email) v \
         {returning}"
    )
}

/// One outbox row's insert, a pgbench script line.
fn outbox_row(
    workspace_id: uuid::Uuid,
    id: &str,
    routing_key: &str,
    message_type: &str,
    size: usize,
) -> String {
    format!(
        "INSERT INTO outbox (id, workspace_id, routing_key, message_type, payload, request_id, \
           created_at) \
         VALUES ({id}, '{workspace_id}', '{routing_key}', '{message_type}', \
           convert_to(repeat('x', {size}), 'UTF8'), 'pgbench', now());\n"
    )
}

/// The least an invitation's writes cost Postgres: one statement writing the
/// invitation, its activity entry, its two outbox rows and the address's
/// counter when the cap is on, committed.
fn one_statement(workspace: &Workspace, recipient_cap: bool) -> Script {
    let (workspace_id, inviter) = (workspace.id, workspace.owner_id);
    let counter = if recipient_cap {
        format!("counted AS ({}), ", recipient_counter(true, " RETURNING 1"))
    } else {
        String::new()
    };
    Script {
        name: format!("invite-statement-{workspace_id}"),
        sql: format!(
            "WITH {counter}invitation AS ( \
               {invitation} \
             ), recorded AS ( \
               INSERT INTO activity (workspace_id, id, occurred_at, actor_id, action, \
                 target_invitation_id, request_id) \
               SELECT workspace_id, gen_random_uuid(), now(), '{inviter}', 'invitation.created', \
                 id, gen_random_uuid()::text FROM invitation \
             ) \
             INSERT INTO outbox (id, workspace_id, routing_key, message_type, payload, \
               request_id, created_at) \
             SELECT m.id, i.workspace_id, m.routing_key, m.message_type, \
               convert_to(repeat('x', m.size), 'UTF8'), 'pgbench', now() \
             FROM invitation i CROSS JOIN LATERAL (VALUES \
               (gen_random_uuid(), 'invitation.created', 'wowchat.users.events.v1.InvitationCreated', 300), \
               (i.mail_message_id, 'mail.invitation', 'wowchat.users.events.v1.SendInvitationEmail', 500) \
             ) AS m(id, routing_key, message_type, size);\n",
            invitation =
                insert_invitation(workspace, "RETURNING workspace_id, id, mail_message_id"),
        ),
    }
}
