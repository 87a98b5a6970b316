//! ListActivity at 10,000,000 entries in one workspace (issue 25), 8 calls
//! in flight: the first page, by target user, by actor, and the 1,000th
//! page reached by following page tokens. The entries span the 13 months
//! retention keeps, over 2,000 users; they are written by one SQL
//! statement a million at a time (the seeding time is printed) and
//! analyzed, as autovacuum would.

use std::time::Instant;

use anyhow::Context;
use uuid::Uuid;
use wowchat_users_api::v1::ListActivityRequest;
use wowchat_users_server::store::Client;

use crate::{
    Common,
    listing::{self, page},
    report::Measurement,
    service::{Service, Workspace},
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
    let (entries, deep_page) = listing::rows(args.entries, common, 20_000, 10_000_000);
    let write = async |service: &Service, workspace: &Workspace| -> anyhow::Result<Vec<Uuid>> {
        let started = Instant::now();
        let people = seed(&service.db().await?, workspace.id, entries).await?;
        eprintln!(
            "activity: wrote and analyzed {entries} entries in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(people)
    };
    listing::scenario(common, "activity", write, async |people, channel, owner| {
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
                vec![page(channel, owner, ListActivityRequest::default(), deep_page).await?],
            ),
        ];
        Ok(listings)
    })
    .await
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
