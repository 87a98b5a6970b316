//! Authenticated reads at 32 calls in flight. CheckPermission, as another
//! backend service asks it (a service user with a custom role asking about
//! a holder of another custom role), next to a no-op gRPC method on a bare
//! tonic server: what any call costs before it does anything. GetUser of
//! the same user next to pgbench selecting that user by primary key at the
//! same concurrency: what the answer costs Postgres.

use anyhow::Context;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use uuid::Uuid;
use wowchat_users_api::v1::{
    CheckPermissionRequest, CreateRoleRequest, GetUserRequest,
    role_service_client::RoleServiceClient, user_service_client::UserServiceClient,
};
use wowchat_users_server::store::users::{self, NewUser};

use crate::{
    Common,
    load::{self, Bearer, Caller},
    pgbench::{self, Script},
    report::{Ceiling, Measurement, Target},
    service::{self, Service, Workspace},
};

const IN_FLIGHT: usize = 32;

/// Issue 7, target 4.
const CHECK_TARGET: Target = Target {
    min_ratio: Some(0.5),
    max_ratio: None,
    min_throughput: None,
    max_p99: Some(std::time::Duration::from_millis(5)),
};
const GET_TARGET: Target = Target {
    min_ratio: Some(0.8),
    ..CHECK_TARGET
};

pub async fn run(common: &Common) -> anyhow::Result<Vec<Measurement>> {
    service::with_service(common, &[], async |scratch, service| {
        let workspace = service.workspace("reads").await?;
        let channels = load::connect(&service.address).await?;
        let (checker, subject) = service_user_and_subject(service, &workspace, &channels).await?;
        let run = common.run(IN_FLIGHT);

        eprintln!("reads: a no-op gRPC method, {IN_FLIGHT} in flight");
        let noop = service::start_noop(scratch).await?;
        let noop_outcome = run
            .measure(&load::connect(&noop.address).await?, noop_call())
            .await;
        noop.stop().await;
        let noop_outcome = noop_outcome?;

        eprintln!("reads: CheckPermission");
        let check = run
            .measure(&channels, check_call(&checker, subject))
            .await?;
        eprintln!("reads: GetUser");
        let get = run.measure(&channels, get_call(&checker, subject)).await?;
        eprintln!("reads: pgbench of one primary-key select");
        let select = Script {
            name: "get-user".into(),
            sql: format!(
                "SELECT * FROM users WHERE workspace_id = '{}' AND id = '{subject}';\n",
                workspace.id
            ),
        };
        let select_tps = pgbench::tps(scratch, &[select], IN_FLIGHT, run.duration).await?;
        Ok(vec![
            // The ceiling's own latencies, for the p99 targets: what the
            // same load costs with nothing behind the method.
            Measurement::of_calls(
                "reads: no-op method (ceiling)",
                &noop_outcome,
                None,
                Target::default(),
            ),
            Measurement::of_calls(
                "reads: CheckPermission",
                &check,
                Some(Ceiling::Throughput(noop_outcome.throughput())),
                CHECK_TARGET,
            ),
            Measurement::of_calls(
                "reads: GetUser",
                &get,
                Some(Ceiling::Throughput(select_tps)),
                GET_TARGET,
            ),
        ])
    })
    .await
}

/// A service user whose custom role grants `users.read`, and the user it
/// asks about: a holder of a custom role of product permissions.
async fn service_user_and_subject(
    service: &Service,
    workspace: &Workspace,
    channels: &[tonic::transport::Channel],
) -> anyhow::Result<(Bearer, Uuid)> {
    let mut roles = RoleServiceClient::new(channels[0].clone());
    let mut ids = Vec::new();
    for (role, permissions) in [
        ("permission-checker", vec!["users.read"]),
        ("reviewer", vec!["reports.read", "conversations.read"]),
    ] {
        roles
            .create_role(workspace.owner.request(CreateRoleRequest {
                name: role.into(),
                permissions: permissions.into_iter().map(Into::into).collect(),
                request_id: String::new(),
            }))
            .await
            .with_context(|| format!("creating the role {role}"))?;
        let id = Uuid::now_v7();
        let email = format!("{role}@reads.example.com");
        users::insert(
            &service.db().await?,
            &NewUser {
                workspace_id: workspace.id,
                id,
                email: &email,
                email_normalized: &email,
                display_name: role,
                role,
                reporting_to: Some(workspace.owner_id),
                password_hash: "not used: nobody signs in",
                access_expires_at: None,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("adding {email}: {e}"))?;
        ids.push(id);
    }
    Ok((service.bearer(ids[0], workspace.id)?, ids[1]))
}

fn noop_call() -> impl Caller {
    |channel, _| {
        Box::pin(async move {
            HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await
                .context("the no-op health check")?;
            Ok(())
        })
    }
}

fn check_call(checker: &Bearer, subject: Uuid) -> impl Caller {
    let checker = checker.clone();
    move |channel, _| {
        let request = checker.request(CheckPermissionRequest {
            user_id: subject.to_string(),
            permission: "reports.read".into(),
        });
        Box::pin(async move {
            let allowed = RoleServiceClient::new(channel)
                .check_permission(request)
                .await
                .context("CheckPermission")?
                .into_inner()
                .allowed;
            anyhow::ensure!(allowed, "CheckPermission refused a granted permission");
            Ok(())
        })
    }
}

fn get_call(checker: &Bearer, subject: Uuid) -> impl Caller {
    let checker = checker.clone();
    move |channel, _| {
        let request = checker.request(GetUserRequest {
            user_id: subject.to_string(),
        });
        Box::pin(async move {
            UserServiceClient::new(channel)
                .get_user(request)
                .await
                .context("GetUser")?;
            Ok(())
        })
    }
}
