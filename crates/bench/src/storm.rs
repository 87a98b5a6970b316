//! An accept storm must not stall reads: ListUsers' first page at 8 calls
//! in flight, idle, then while waves of 50 AcceptInvitation arrive at once
//! (each hashing a password with argon2id), from clients of their own.

use anyhow::{Context, ensure};
use futures::future::try_join_all;
use prost::Message;
use tokio_util::sync::CancellationToken;
use wowchat_users_api::v1::{
    AcceptInvitationRequest, InviteUserRequest, ListUsersRequest, SendInvitationEmail,
    user_service_client::UserServiceClient,
};
use wowchat_users_server::store::Client;

use crate::{
    Common, list, load,
    report::{Ceiling, Measurement, Target},
    service,
};

/// AcceptInvitation calls sent at once.
const STORM: usize = 50;

/// Issue 7, target 6: within twice the idle p99.
const TARGET: Target = Target {
    min_ratio: None,
    max_ratio: Some(2.0),
    min_throughput: None,
    max_p99: None,
};

pub async fn run(common: &Common) -> anyhow::Result<Vec<Measurement>> {
    let (users, waves) = if common.quick {
        (1_000, 1)
    } else {
        (10_000, 4)
    };
    service::with_service(common, &[], async |_, service| {
        let workspace = service.workspace("storm").await?;
        list::seed(&service.db().await?, workspace.id, users).await?;
        let readers = load::connect(&service.address).await?;
        let accepters = load::connect(&service.address).await?;

        let mut client = UserServiceClient::new(accepters[0].clone());
        for i in 0..STORM * waves {
            client
                .invite_user(workspace.owner.request(InviteUserRequest {
                    email: format!("storm.{i}@invitees.example.com"),
                    role: "agent".into(),
                    ..Default::default()
                }))
                .await
                .context("InviteUser")?;
        }
        let tokens = invitation_tokens(&service.db().await?).await?;
        ensure!(
            tokens.len() == STORM * waves,
            "a mail command per invitation"
        );

        let first_page = || list::list_call(&workspace.owner, vec![ListUsersRequest::default()]);
        let run = common.run(list::IN_FLIGHT);
        eprintln!("storm: ListUsers idle, {} in flight", list::IN_FLIGHT);
        let idle = run.measure(&readers, first_page()).await?;
        let idle_p99 = idle.p99().context("no ListUsers call finished")?;

        eprintln!("storm: ListUsers during {waves} wave(s) of {STORM} AcceptInvitation");
        let stop = CancellationToken::new();
        let storm = tokio::spawn({
            let stop = stop.clone();
            async move {
                let accepted = accept_in_waves(&accepters, tokens).await;
                stop.cancel();
                accepted
            }
        });
        let during = load::drive_until(&readers, list::IN_FLIGHT, stop, first_page()).await;
        storm.await.context("the storm panicked")??;
        Ok(vec![Measurement::of_calls(
            format!("storm: ListUsers p99, {STORM} accepts"),
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

/// Accepts the invitations `STORM` at a time, each wave all at once over
/// `channels`.
async fn accept_in_waves(
    channels: &[tonic::transport::Channel],
    tokens: Vec<String>,
) -> anyhow::Result<()> {
    for wave in tokens.chunks(STORM) {
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
