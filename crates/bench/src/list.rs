//! ListUsers at 100,000 users in one workspace, 8 calls in flight: the first
//! page, a `query` search, a `role` filter and the 1,000th page reached by
//! following page tokens, in both orders. The users are written by SQL and
//! analyzed, as autovacuum would, but for the last 5%, who joined since;
//! 20 other workspaces share the table, as in production.

use anyhow::Context;
use uuid::Uuid;
use wowchat_users_api::v1::ListUsersRequest;
use wowchat_users_server::store::Client;

use crate::{
    Common,
    listing::{self, page},
    report::Measurement,
    service::{Service, Workspace},
};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Users in the listed workspace; 100,000 by default, 2,000 with --quick
    /// (where the deep page is the last, the 40th, instead of the 1,000th).
    #[arg(long)]
    pub users: Option<i64>,
}

pub async fn run(common: &Common, args: &Args) -> anyhow::Result<Vec<Measurement>> {
    let (users, deep_page) = listing::rows(args.users, common, 2_000, 100_000);
    let write = async |service: &Service, workspace: &Workspace| {
        eprintln!("list: writing {users} users");
        seed(&service.db().await?, workspace.id, users).await
    };
    listing::scenario(common, "list", write, async |(), channel, owner| {
        let by_activity = ListUsersRequest {
            order_by: "last_active_time desc".into(),
            ..Default::default()
        };
        let query = |q: &str| ListUsersRequest {
            query: q.into(),
            ..Default::default()
        };
        let role = |r: &str| ListUsersRequest {
            role: r.into(),
            ..Default::default()
        };
        let deep = |order: &str| format!("list: {order}page {deep_page} by tokens");
        let listings = vec![
            (
                "list: first page".to_owned(),
                vec![ListUsersRequest::default()],
            ),
            // A common last name, a name and number, a first name, an email
            // fragment: from thousands of matches to a few.
            (
                "list: query".to_owned(),
                vec![
                    query("hopper"),
                    query("ritchie12"),
                    query("grace"),
                    query("knuth4242"),
                    query("linus.torv"),
                ],
            ),
            (
                "list: role".to_owned(),
                vec![role("admin"), role("owner"), role("supervisor")],
            ),
            (
                deep(""),
                vec![page(channel, owner, ListUsersRequest::default(), deep_page).await?],
            ),
            (
                "list: last active, first page".to_owned(),
                vec![by_activity.clone()],
            ),
            (
                deep("last active, "),
                vec![page(channel, owner, by_activity, deep_page).await?],
            ),
        ];
        Ok(listings)
    })
    .await
}

/// Adds `users` users to `workspace_id`, and a fifth as many to 20 other
/// workspaces: a realistic mix of names, roles (0.1% owners, 1% admins,
/// 10% supervisors), 5% deactivated, a quarter never active, agents
/// reporting to supervisors; ids time-ordered (UUIDv7 of the join time),
/// as the service makes them. Then VACUUM ANALYZE, as autovacuum would, and
/// the last 5% join after it: what a search reads between two vacuums (the
/// trigram index's pending list, migration V38) is part of its cost.
pub async fn seed(db: &Client, workspace_id: Uuid, users: i64) -> anyhow::Result<()> {
    let joined_since_vacuum = users / 20;
    let before = users - joined_since_vacuum;
    let elsewhere = before + before / 5;
    db.batch_execute(
        "INSERT INTO workspaces (id, name) \
         SELECT gen_random_uuid(), 'bench ' || g FROM generate_series(1, 20) g",
    )
    .await?;
    // Users g in [from, to]: those up to `before` and past `elsewhere` in
    // the listed workspace, the others spread over the other workspaces.
    let write_users = "WITH names AS ( \
           SELECT ARRAY['Ada','Grace','Alan','Linus','Barbara','Ken','Dennis','Margaret', \
             'Edsger','Donald','Frances','John','Radia','Tim','Hedy','Claude','Katherine', \
             'Niklaus','Bjarne','Guido','Yukihiro','Anders','Sophie','Lena','Omar','Priya', \
             'Wei','Chen','Fatima','Jose'] AS first, \
           ARRAY['Lovelace','Hopper','Turing','Torvalds','Liskov','Thompson','Ritchie', \
             'Hamilton','Dijkstra','Knuth','Allen','McCarthy','Perlman','Berners-Lee', \
             'Lamarr','Shannon','Johnson','Wirth','Stroustrup','van Rossum','Matsumoto', \
             'Hejlsberg','Wilson','Schmidt','Haddad','Patel','Zhang','Li','Khan','Garcia'] AS last \
         ), others AS ( \
           SELECT array_agg(id) AS ids FROM workspaces WHERE id <> $1 \
         ), generated AS ( \
           SELECT g, \
             CASE WHEN g <= $2::bigint OR g > $3::bigint THEN $1 \
               ELSE o.ids[1 + g % array_length(o.ids, 1)] END AS ws, \
             n.first[1 + (hashint4(g::int) & 2147483647) % 30] AS f, \
             n.last[1 + (hashint4(g::int * 7) & 2147483647) % 30] AS l, \
             now() - interval '1 year' + g * interval '1 minute' AS joined \
           FROM generate_series($4::bigint, $5::bigint) g, names n, others o \
         ) \
         INSERT INTO users (workspace_id, id, email, email_normalized, display_name, role, \
           status, deactivation_reason, password_hash, created_at, updated_at, last_active_at) \
         SELECT ws, encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) \
           placing substring(int8send((extract(epoch FROM joined) * 1000)::bigint) FROM 3) \
           FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid, \
           f || '.' || replace(l, ' ', '') || g || '@Example.com', \
           lower(f || '.' || replace(l, ' ', '') || g || '@example.com'), \
           f || ' ' || l, \
           CASE WHEN g % 1000 = 1 THEN 'owner' WHEN g % 100 = 2 THEN 'admin' \
                WHEN g % 10 = 3 THEN 'supervisor' ELSE 'agent' END, \
           CASE WHEN g % 20 = 5 THEN 'DEACTIVATED' ELSE 'ACTIVE' END, \
           CASE WHEN g % 20 = 5 THEN 'left' END, \
           '$argon2id$v=19$m=19456,t=2,p=1$' || md5(g::text) || '$' || md5((g * 3)::text), \
           joined, joined, \
           CASE WHEN g % 4 = 0 THEN NULL \
                ELSE now() - ((hashint4(g::int * 13) & 2147483647) % 5000000) * interval '1 second' END \
         FROM generated";
    db.execute(
        write_users,
        &[&workspace_id, &before, &elsewhere, &1_i64, &elsewhere],
    )
    .await
    .context("writing the users")?;
    db.execute(
        "WITH supervisors AS ( \
           SELECT id, row_number() OVER (ORDER BY created_at) AS rn FROM users \
           WHERE workspace_id = $1 AND role = 'supervisor' \
         ), agents AS ( \
           SELECT id, row_number() OVER (ORDER BY created_at) AS rn FROM users \
           WHERE workspace_id = $1 AND role = 'agent' \
         ), n AS (SELECT NULLIF(count(*), 0) AS n FROM supervisors) \
         UPDATE users u SET reporting_to = s.id FROM agents a, n, supervisors s \
         WHERE u.workspace_id = $1 AND u.id = a.id AND s.rn = 1 + a.rn % n.n",
        &[&workspace_id],
    )
    .await
    .context("assigning managers")?;
    db.batch_execute("VACUUM ANALYZE users")
        .await
        .context("analyzing")?;
    let last = elsewhere + joined_since_vacuum;
    db.execute(
        write_users,
        &[&workspace_id, &before, &elsewhere, &(elsewhere + 1), &last],
    )
    .await
    .context("writing the users who joined since")?;
    Ok(())
}
