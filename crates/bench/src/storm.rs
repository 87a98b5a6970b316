//! An accept storm must not stall reads: ListUsers' first page at 8 calls
//! in flight, idle, then while waves of 50 AcceptInvitation arrive at once
//! (each hashing a password with argon2id), from clients of their own.

use anyhow::{Context, ensure};
use futures::future::try_join_all;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use wowchat_users_api::{
    events::v1::SendInvitationEmail,
    v1::{
        AcceptInvitationRequest, BatchInviteUsersRequest, InviteUserRequest, ListUsersRequest,
        batch_invite_result, user_service_client::UserServiceClient,
    },
};
use wowchat_users_server::store::Client;

use crate::{
    Common, list, listing,
    load::{self, Bearer},
    report::{Ceiling, Measurement, Target},
    service,
};

/// AcceptInvitation calls sent at once (a smoke run sends fewer).
const STORM: usize = 50;

/// Issue 7, target 6: within twice the idle p99.
const TARGET: Target = Target {
    min_ratio: None,
    max_ratio: Some(2.0),
    min_throughput: None,
    max_p99: None,
};

pub async fn run(common: &Common) -> anyhow::Result<Vec<Measurement>> {
    let (users, waves, storm) = if common.quick {
        (1_000, 1, 10)
    } else {
        (10_000, 4, STORM)
    };
    service::with_service(common, &[], async |_, service| {
        let workspace = service.workspace("storm").await?;
        list::seed(&service.db().await?, workspace.id, users).await?;
        let readers = load::connect(&service.address).await?;
        let accepters = load::connect(&service.address).await?;

        for wave in 0..waves {
            invite(&accepters[0], &workspace.owner, wave, storm).await?;
        }
        let tokens = invitation_tokens(&service.db().await?).await?;
        ensure!(
            tokens.len() == storm * waves,
            "a mail command per invitation"
        );

        let first_page = || listing::list_call(&workspace.owner, vec![ListUsersRequest::default()]);
        let run = common.run(listing::IN_FLIGHT);
        eprintln!("storm: ListUsers idle, {} in flight", listing::IN_FLIGHT);
        let idle = run.measure(&readers, first_page()).await?;
        let idle_p99 = idle.p99().context("no ListUsers call finished")?;

        eprintln!("storm: ListUsers during {waves} wave(s) of {storm} AcceptInvitation");
        let stop = CancellationToken::new();
        let accepting = tokio::spawn({
            let stop = stop.clone();
            async move {
                let accepted = accept_in_waves(&accepters, tokens, storm).await;
                stop.cancel();
                accepted
            }
        });
        let during = load::drive_until(&readers, listing::IN_FLIGHT, stop, first_page()).await;
        accepting.await.context("the storm panicked")??;
        Ok(vec![Measurement::of_calls(
            format!("storm: ListUsers p99, {storm} accepts"),
            &during?,
            Some(Ceiling::P99(idle_p99)),
            TARGET,
        )])
    })
    .await
}

/// The acceptance tokens, from the mail commands waiting in the outbox (the
/// relay is off), as the mailer would read them.
async fn invitation_tokens(db: &Client) -> anyhow::Result<Vec<String>> {
    db.query(
        "SELECT payload FROM outbox WHERE routing_key = 'mail.invitation'",
        &[],
    )
    .await?
    .iter()
    .map(|row| {
        let mail = SendInvitationEmail::decode(row.get::<_, &[u8]>(0))?;
        Ok(mail.token)
    })
    .collect()
}

/// One wave's invitations, `size` in one BatchInviteUsers call.
async fn invite(channel: &Channel, owner: &Bearer, wave: usize, size: usize) -> anyhow::Result<()> {
    let requests = (0..size)
        .map(|i| InviteUserRequest {
            email: format!("storm.{wave}.{i}@invitees.example.com"),
            role: "agent".into(),
            ..Default::default()
        })
        .collect();
    let results = UserServiceClient::new(channel.clone())
        .batch_invite_users(owner.request(BatchInviteUsersRequest { requests }))
        .await
        .context("BatchInviteUsers")?
        .into_inner()
        .results;
    ensure!(
        results
            .iter()
            .all(|r| matches!(r.outcome, Some(batch_invite_result::Outcome::Invitation(_)))),
        "BatchInviteUsers refused a row"
    );
    Ok(())
}

/// Accepts the invitations `wave` at a time, each wave all at once over
/// `channels`.
async fn accept_in_waves(
    channels: &[Channel],
    tokens: Vec<String>,
    wave: usize,
) -> anyhow::Result<()> {
    for wave in tokens.chunks(wave) {
        try_join_all(wave.iter().enumerate().map(|(i, token)| {
            let mut client = UserServiceClient::new(channels[i % channels.len()].clone());
            let request = AcceptInvitationRequest {
                token: token.clone(),
                display_name: format!("Storm Invitee {i}"),
                password: "storm password 1".into(),
            };
            async move {
                client
                    .accept_invitation(request)
                    .await
                    .context("AcceptInvitation")
            }
        }))
        .await?;
    }
    Ok(())
}
