//! ListActivity at 10,000,000 entries in one workspace (issue 25), 8 calls
//! in flight: the first page, by target user, by actor, and the 1,000th
//! page reached by following page tokens. The entries span the 13 months
//! retention keeps, over 2,000 users; they are written by one SQL
//! statement a million at a time (the seeding time is printed) and
//! analyzed, as autovacuum would.

use std::{sync::Arc, time::Instant};

use anyhow::{Context, ensure};
use uuid::Uuid;
use wowchat_users_api::v1::{ListActivityRequest, user_service_client::UserServiceClient};
use wowchat_users_server::store::Client;

use crate::{
    Common,
    load::{self, Bearer, Caller},
    report::{Measurement, Target},
    service,
};

pub const IN_FLIGHT: usize = 8;

/// Issue 25, §4: p99 at most 10 ms.
const TARGET: Target = Target {
    min_ratio: None,
    max_ratio: None,
    min_throughput: None,
    max_p99: Some(std::time::Duration::from_millis(10)),
};

/// The people the entries are by and about.
const PEOPLE: i64 = 2_000;

/// Rows one seeding statement writes.
const CHUNK: i64 = 1_000_000;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Entries in the listed workspace; 10,000,000 by default, 20,000 with
    /// --quick (where the deep page is the last, the 400th).
    #[arg(long)]
    pub entries: Option<i64>,
}

pub async fn run(common: &Common, args: &Args) -> anyhow::Result<Vec<Measurement>> {
    let entries = args
        .entries
        .unwrap_or(if common.quick { 20_000 } else { 10_000_000 });
    let deep_page = (entries / 50).clamp(1, 1000) as usize;
    service::with_service(common, &[], async |_, service| {
        let workspace = service.workspace("activity").await?;
        let started = Instant::now();
        let people = seed(&service.db().await?, workspace.id, entries).await?;
        eprintln!(
            "activity: wrote and analyzed {entries} entries in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let channels = load::connect(&service.address).await?;
        let mut client = UserServiceClient::new(channels[0].clone());
        let owner = &workspace.owner;
        let someone = |i: usize| people[i % people.len()].to_string();
        let by_target = (0..16)
            .map(|i| ListActivityRequest {
                target_user_id: someone(i * 7),
                ..Default::default()
            })
            .collect();
        let by_actor = (0..16)
            .map(|i| ListActivityRequest {
                actor_user_id: someone(i * 11 + 3),
                ..Default::default()
            })
            .collect();
        let listings = vec![
            (
                "activity: first page".to_owned(),
                vec![ListActivityRequest::default()],
            ),
            ("activity: by target user".to_owned(), by_target),
            ("activity: by actor".to_owned(), by_actor),
            (
                format!("activity: page {deep_page} by tokens"),
                vec![page(&mut client, owner, deep_page).await?],
            ),
        ];
        let run = common.run(IN_FLIGHT);
        let mut rows = Vec::new();
        for (name, requests) in listings {
            eprintln!("{name}: ListActivity, {IN_FLIGHT} in flight");
            let outcome = run.measure(&channels, list_call(owner, requests)).await?;
            rows.push(Measurement::of_calls(name, &outcome, None, TARGET));
        }
        Ok(rows)
    })
    .await
}

/// Each call lists with one of `requests`, in turn.
fn list_call(bearer: &Bearer, requests: Vec<ListActivityRequest>) -> impl Caller {
    let (bearer, requests) = (bearer.clone(), Arc::new(requests));
    move |channel, n| {
        let request = bearer.request(requests[n as usize % requests.len()].clone());
        Box::pin(async move {
            UserServiceClient::new(channel)
                .list_activity(request)
                .await
                .context("ListActivity")?;
            Ok(())
        })
    }
}

/// The request for page `number` of the log, reached by following the
/// tokens of the pages before it.
async fn page(
    client: &mut UserServiceClient<tonic::transport::Channel>,
    bearer: &Bearer,
    number: usize,
) -> anyhow::Result<ListActivityRequest> {
    let mut page_token = String::new();
    for _ in 1..number {
        page_token = client
            .list_activity(bearer.request(ListActivityRequest {
                page_token,
                ..Default::default()
            }))
            .await
            .context("ListActivity, following the pages")?
            .into_inner()
            .next_page_token;
        ensure!(!page_token.is_empty(), "the log has {number} pages");
    }
    Ok(ListActivityRequest {
        page_token,
        ..Default::default()
    })
}

/// Writes `entries` activity entries to `workspace_id`, spread evenly over
/// the last 13 months, by and about `PEOPLE` ids (the ids it returns), with
/// the actions' real mix; then VACUUM ANALYZE. Other workspaces' entries
/// share the table, a tenth as many.
async fn seed(db: &Client, workspace_id: Uuid, entries: i64) -> anyhow::Result<Vec<Uuid>> {
    let people: Vec<Uuid> = (0..PEOPLE).map(|_| Uuid::now_v7()).collect();
    db.batch_execute(
        "INSERT INTO workspaces (id, name) \
         SELECT gen_random_uuid(), 'bench ' || g FROM generate_series(1, 10) g",
    )
    .await?;
    let others: Vec<Uuid> = db
        .query("SELECT id FROM workspaces WHERE id <> $1", &[&workspace_id])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    // One in eleven is another workspace's.
    let total = entries + entries / 10;
    let mut written = 0;
    while written < total {
        let count = CHUNK.min(total - written);
        eprintln!("activity: writing entries {written}..{}", written + count);
        db.execute(
            "INSERT INTO activity (workspace_id, id, occurred_at, actor_id, action, \
               target_user_id, changes, request_id) \
             SELECT CASE WHEN g % 11 = 10 THEN ($5::uuid[])[1 + g % array_length($5, 1)] \
                         ELSE $1 END, \
               gen_random_uuid(), \
               now() - ($4 - g)::float8 / $4 * interval '395 days', \
               ($2::uuid[])[1 + (hashint8(g) & 2147483647) % array_length($2, 1)], \
               (ARRAY['user.invited','invitation.accepted','user.updated','user.signed_in', \
                      'user.role_changed','invitation.revoked'])[1 + g % 6], \
               ($2::uuid[])[1 + (hashint8(g * 7) & 2147483647) % array_length($2, 1)], \
               '[]', 'bench' \
             FROM generate_series($3::bigint, $3::bigint + $6::bigint - 1) g",
            &[&workspace_id, &people, &written, &total, &others, &count],
        )
        .await
        .context("writing the entries")?;
        written += count;
    }
    db.batch_execute("VACUUM ANALYZE activity")
        .await
        .context("analyzing")?;
    Ok(people)
}
