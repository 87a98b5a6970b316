//! The outbox relay draining a backlog, next to a bare lapin publisher.
//!
//! The outbox is filled with invitations as `InviteUser` writes them (the
//! `invitation.created` event and the `mail.invitation` command carrying a
//! token, built by the server's own `events` and inserted by its own
//! `store::outbox`). The ceiling then publishes those same rows (same
//! exchanges and queues, same payloads and properties, mandatory, persistent)
//! in batches of the relay's batch size, each batch's confirms awaited before
//! the next. The queues are purged, and the real relay drains the backlog.
//! Afterwards every row must be marked published, every mail command's
//! payload erased, and every message in its queue exactly once.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::future::join_all;
use lapin::{
    Channel, Confirmation,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueuePurgeOptions},
};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wowchat_users_server::{
    auth::Caller,
    config::Settings,
    db,
    domain::{
        invitation::{Invitation, InvitationToken},
        permission::Role,
    },
    events,
    messaging::{self, relay::Relay},
    store::{
        Pool,
        outbox::{self, PendingMessage},
    },
};
use wowchat_users_testkit::ready_messages;

use crate::{
    Common,
    report::{Measurement, Target},
    scratch::Scratch,
};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Outbox rows in the backlog (half events, half mail commands);
    /// 50,000 by default, 2,000 with --quick.
    #[arg(long)]
    pub rows: Option<usize>,
    /// Rows per relay batch, and messages per batch of the bare publisher;
    /// the relay's default (`WOWCHAT_RELAY_BATCH_SIZE`) when not given.
    #[arg(long)]
    pub batch_size: Option<i64>,
}

/// Issue 7: at least 0.7 times the bare publisher, and 5,000 rows/s.
const TARGET: Target = Target {
    min_ratio: Some(0.7),
    max_ratio: None,
    min_throughput: Some(5000.0),
    max_p99: None,
};

/// Invitations written per transaction while filling the outbox.
const FILL_CHUNK: usize = 500;

pub async fn run(common: &Common, args: &Args) -> anyhow::Result<Measurement> {
    let rows = args
        .rows
        .unwrap_or(if common.quick { 2_000 } else { 50_000 })
        .max(2);
    Scratch::with(common, async |scratch| {
        measure(common, scratch, rows, args.batch_size).await
    })
    .await
}

async fn measure(
    common: &Common,
    scratch: &Scratch,
    rows: usize,
    batch_size: Option<i64>,
) -> anyhow::Result<Measurement> {
    let mut settings = Settings::defaults();
    if let Some(batch_size) = batch_size {
        settings.relay_batch_size = batch_size;
    }
    settings.database.url = scratch.database_url.clone().into();
    settings.amqp.url = common.amqp_url.clone().into();
    settings.amqp.prefix = scratch.topology.prefix().to_owned();
    let relay_settings = settings.relay_settings();
    let batch_size = usize::try_from(relay_settings.batch_size).unwrap_or(1);

    // The broker as a deployment has it: the mailer's queue bound to the
    // mail commands, the archive queue bound to every event.
    let connection = scratch.brokers.connect("wowchat-bench").await?;
    let channel = connection.create_channel().await?;
    wowchat_mailer::amqp::declare_topology(&channel, &scratch.topology).await?;
    messaging::declare_topology(&connection, &scratch.topology).await?;

    let pool = db::SCHEMA.pool(&scratch.database_url, messaging::relay::POOL_SIZE)?;
    let invitations = rows / 2;
    eprintln!("relay: writing {} outbox rows", invitations * 2);
    fill(&pool, invitations).await?;
    let backlog = load(&pool).await?;
    let expected = backlog.len();

    eprintln!("relay: bare publisher, batches of {batch_size} with confirms");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let ceiling = publish_bare(&channel, &scratch.topology, &backlog, batch_size).await?;
    drop(backlog);
    ensure!(
        queued(&channel, scratch).await? == expected,
        "the bare publisher's messages are not all in their queues"
    );
    for queue in [
        scratch.topology.events_archive_queue(),
        scratch.topology.mailer_queue(),
    ] {
        channel
            .queue_purge(queue.into(), QueuePurgeOptions::default())
            .await?;
    }

    eprintln!("relay: the relay drains the backlog");
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let relay = tokio::spawn(Relay::new(pool.clone(), relay_settings, None).run(shutdown.clone()));
    let client = pool.get().await?;
    let deadline = started + Duration::from_secs(60).max(Duration::from_millis(rows as u64));
    loop {
        let left: i64 = client
            .query_one(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL",
                &[],
            )
            .await?
            .get(0);
        if left == 0 {
            break;
        }
        if Instant::now() > deadline {
            shutdown.cancel();
            bail!("the relay left {left} rows unpublished");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained = started.elapsed();
    eprintln!("relay: drained; checking every message is in its queue once");
    shutdown.cancel();
    relay.await.context("the relay task")?;
    let throughput = expected as f64 / drained.as_secs_f64();

    ensure!(
        queued(&channel, scratch).await? == expected,
        "the relay's messages are not all in their queues, or some twice"
    );
    let unerased: i64 = client
        .query_one(
            "SELECT count(*) FROM outbox WHERE routing_key LIKE 'mail.%' AND length(payload) > 0",
            &[],
        )
        .await?
        .get(0);
    ensure!(
        unerased == 0,
        "{unerased} published mail commands kept their payload"
    );
    // The channel first: a channel dropped after its connection closes
    // makes lapin log a connection error.
    let _ = channel.close(200, "benchmark done".into()).await;
    let _ = connection.close(200, "benchmark done".into()).await;

    Ok(Measurement::of_rows("relay", throughput, ceiling, TARGET))
}

/// Writes `invitations` invitations' outbox rows as `InviteUser` does: the
/// event and the mail command, through the server's `events` and `outbox`.
async fn fill(pool: &Pool, invitations: usize) -> anyhow::Result<()> {
    let workspace_id = Uuid::now_v7();
    let inviter = Caller {
        user_id: Uuid::now_v7(),
        workspace_id,
        email: "olive.owner@acme-support.example.com".into(),
        display_name: "Olive Owner".into(),
        role: Role::builtin("owner").context("the owner role")?,
        directory_token_id: None,
    };
    let mut client = pool.get().await?;
    let token_keys = wowchat_platform::sealing::TokenKeys::parse(
        &wowchat_platform::sealing::TokenKeys::generate_setting()?,
    )?;
    let mut written = 0;
    while written < invitations {
        let chunk = FILL_CHUNK.min(invitations - written);
        let mut messages = Vec::with_capacity(2 * chunk);
        for i in written..written + chunk {
            let invitation = invitation(workspace_id, inviter.user_id, i);
            let request_id = Uuid::new_v4().to_string();
            messages.push(events::invitation_created(&invitation, &request_id));
            // Sealed, as production writes it.
            messages.push(
                events::send_invitation_email(
                    Uuid::now_v7(),
                    &invitation,
                    &InvitationToken::generate(),
                    Some(&token_keys),
                    "Acme Support",
                    &inviter,
                    // As long as a real unsubscribe token.
                    "u".repeat(104),
                    &request_id,
                )
                .map_err(|e| anyhow::anyhow!("sealing a token: {e}"))?,
            );
        }
        let writes: Vec<_> = messages.into_iter().map(outbox::insert).collect();
        let tx = client.transaction().await?;
        // Issued together, so the client pipelines them on the connection.
        for result in join_all(writes.iter().map(|write| write.run(&tx))).await {
            result.map_err(|e| anyhow::anyhow!("writing the outbox: {e}"))?;
        }
        tx.commit().await?;
        written += chunk;
    }
    Ok(())
}

fn invitation(workspace_id: Uuid, inviter_id: Uuid, i: usize) -> Invitation {
    Invitation {
        reporting_to: Some(inviter_id),
        message: "Welcome aboard! You will be answering the support inbox with us.".into(),
        ..Invitation::pending(
            Uuid::now_v7(),
            workspace_id,
            inviter_id,
            format!("new.colleague.{i}@customer-{}.example.com", i % 97),
            "agent".into(),
            OffsetDateTime::now_utc(),
            time::Duration::days(7),
        )
    }
}

/// Every unpublished row, as the relay reads them (the transaction is
/// rolled back: nothing stays claimed).
async fn load(pool: &Pool) -> anyhow::Result<Vec<PendingMessage>> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let rows = outbox::claim_due(&tx, i64::MAX)
        .await
        .map_err(|e| anyhow::anyhow!("reading the outbox: {e}"))?;
    tx.rollback().await?;
    Ok(rows)
}

/// Publishes `messages` in batches of `batch_size`, awaiting each batch's
/// confirms before the next; returns messages per second.
async fn publish_bare(
    channel: &Channel,
    topology: &wowchat_users_api::topology::Topology,
    messages: &[PendingMessage],
    batch_size: usize,
) -> anyhow::Result<f64> {
    let options = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let started = Instant::now();
    for batch in messages.chunks(batch_size) {
        let confirms = join_all(batch.iter().map(|m| {
            channel.basic_publish(
                topology.exchange_for(&m.routing_key).into(),
                m.routing_key.as_str().into(),
                options,
                &m.payload,
                messaging::relay::properties(m, m.trace.as_ref()),
            )
        }))
        .await;
        for confirm in confirms {
            match confirm?.await? {
                Confirmation::Ack(None) => {}
                // Not printed: a returned mail command carries its token.
                _ => bail!("the broker refused or returned a message"),
            }
        }
    }
    Ok(messages.len() as f64 / started.elapsed().as_secs_f64())
}

/// Messages waiting in the archive and mailer queues.
async fn queued(channel: &Channel, scratch: &Scratch) -> anyhow::Result<usize> {
    let mut total = 0;
    for queue in [
        scratch.topology.events_archive_queue(),
        scratch.topology.mailer_queue(),
    ] {
        total += ready_messages(channel, &queue).await? as usize;
    }
    Ok(total)
}
