//! ListUsers at 100k users in one workspace (issue 7, target 5): p50 and p99
//! at 8 calls in flight for the first page, a `query` search, a `role`
//! filter and the 1,000th page reached by following page tokens, in both
//! orders; each beside the 10 ms p99 target.
//!
//! A real server on the local Postgres (the test kit's, on a fresh database;
//! `TEST_DATABASE_URL` to point elsewhere) and a real gRPC client over four
//! connections. The users are written with one SQL statement, then analyzed.
//! Other workspaces (20 × 1,000 users) share the table, as in production.
//!
//! Run: `cargo bench -p wowchat-users-server --bench list_users`. Optional
//! environment: `LIST_BENCH_USERS` (default 100000), `LIST_BENCH_SECS` per
//! scenario (default 10). Exits non-zero when a p99 misses the target.
//!
//! The scenarios live in `scenarios` and need only a channel and a token, so
//! they move as they are into the benchmark crate as its `list` scenario.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use wowchat_users_testkit::TestApp;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let users: i64 = env_or("LIST_BENCH_USERS", 100_000);
    let secs: u64 = env_or("LIST_BENCH_SECS", 10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let missed = runtime.block_on(async {
        let mut app = TestApp::spawn().await;
        let db = app.db().await;
        let started = std::time::Instant::now();
        scenarios::seed(&db, app.workspace_id, users).await;
        println!(
            "seeded {users} users into database {} in {:?}",
            app.database_name,
            started.elapsed()
        );
        let mut channels = Vec::new();
        for _ in 0..4 {
            channels.push(app.channel().await);
        }
        let results = scenarios::run(&channels, &app.owner_token, Duration::from_secs(secs)).await;
        scenarios::print(&results);
        app.stop().await;
        results.iter().filter(|r| !r.passed()).count()
    });
    if missed > 0 {
        eprintln!("{missed} scenario(s) missed the p99 target");
        std::process::exit(1);
    }
}

mod scenarios {
    use std::{
        sync::Arc,
        time::{Duration, Instant},
    };

    use tonic::transport::Channel;
    use uuid::Uuid;
    use wowchat_users_api::v1::{self as proto, user_service_client::UserServiceClient};
    use wowchat_users_testkit::authed;

    pub const IN_FLIGHT: usize = 8;
    pub const TARGET_P99: Duration = Duration::from_millis(10);

    /// Adds `users` users to `workspace_id` and 20 other workspaces of 1,000
    /// users each: a realistic mix of names, roles (0.1% owners, 1% admins,
    /// 10% supervisors), 5% deactivated, a quarter never active, agents
    /// reporting to supervisors. Then ANALYZE, as autovacuum would.
    pub async fn seed(db: &tokio_postgres::Client, workspace_id: Uuid, users: i64) {
        db.batch_execute(
            "INSERT INTO workspaces (id, name) \
             SELECT gen_random_uuid(), 'bench ' || g FROM generate_series(1, 20) g",
        )
        .await
        .unwrap();
        db.execute(
            "WITH names AS ( \
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
                 CASE WHEN g <= $2::bigint THEN $1 ELSE o.ids[1 + g % array_length(o.ids, 1)] END AS ws, \
                 n.first[1 + (hashint4(g::int) & 2147483647) % 30] AS f, \
                 n.last[1 + (hashint4(g::int * 7) & 2147483647) % 30] AS l \
               FROM generate_series(1, $2::bigint + 20000) g, names n, others o \
             ) \
             INSERT INTO users (workspace_id, id, email, email_normalized, display_name, role, \
               status, deactivation_reason, password_hash, created_at, updated_at, last_active_at) \
             SELECT ws, gen_random_uuid(), \
               f || '.' || replace(l, ' ', '') || g || '@Example.com', \
               lower(f || '.' || replace(l, ' ', '') || g || '@example.com'), \
               f || ' ' || l, \
               CASE WHEN g % 1000 = 1 THEN 'owner' WHEN g % 100 = 2 THEN 'admin' \
                    WHEN g % 10 = 3 THEN 'supervisor' ELSE 'agent' END, \
               CASE WHEN g % 20 = 5 THEN 'DEACTIVATED' ELSE 'ACTIVE' END, \
               CASE WHEN g % 20 = 5 THEN 'left' END, \
               '$argon2id$v=19$m=19456,t=2,p=1$' || md5(g::text) || '$' || md5((g * 3)::text), \
               now() - interval '1 year' + g * interval '1 minute', \
               now() - interval '1 year' + g * interval '1 minute', \
               CASE WHEN g % 4 = 0 THEN NULL \
                    ELSE now() - ((hashint4(g::int * 13) & 2147483647) % 5000000) * interval '1 second' END \
             FROM generated",
            &[&workspace_id, &users],
        )
        .await
        .unwrap();
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
        .unwrap();
        db.batch_execute("VACUUM ANALYZE users").await.unwrap();
    }

    pub struct Outcome {
        pub name: String,
        pub calls: usize,
        pub elapsed: Duration,
        pub p50: Duration,
        pub p99: Duration,
        pub total_size: i32,
    }

    impl Outcome {
        pub fn passed(&self) -> bool {
            self.p99 <= TARGET_P99
        }
    }

    /// The requests of one scenario, taken in turn by the callers.
    struct Scenario {
        name: String,
        requests: Vec<proto::ListUsersRequest>,
    }

    async fn list(
        client: &mut UserServiceClient<Channel>,
        token: &str,
        request: proto::ListUsersRequest,
    ) -> proto::ListUsersResponse {
        client
            .list_users(authed(token, request))
            .await
            .expect("ListUsers succeeds")
            .into_inner()
    }

    /// The request for the 1,000th page of `request`'s listing, reached by
    /// following the tokens of the 999 before it.
    async fn page_1000(
        client: &mut UserServiceClient<Channel>,
        token: &str,
        request: proto::ListUsersRequest,
    ) -> proto::ListUsersRequest {
        let mut page_token = String::new();
        for _ in 0..999 {
            page_token = list(
                client,
                token,
                proto::ListUsersRequest {
                    page_token,
                    ..request.clone()
                },
            )
            .await
            .next_page_token;
            assert!(!page_token.is_empty(), "the listing has 1,000 pages");
        }
        proto::ListUsersRequest {
            page_token,
            ..request
        }
    }

    pub async fn run(channels: &[Channel], token: &str, duration: Duration) -> Vec<Outcome> {
        let mut client = UserServiceClient::new(channels[0].clone());
        let by_activity = proto::ListUsersRequest {
            order_by: "last_active_time desc".into(),
            ..Default::default()
        };
        let query = |q: &str| proto::ListUsersRequest {
            query: q.into(),
            ..Default::default()
        };
        let role = |r: &str| proto::ListUsersRequest {
            role: r.into(),
            ..Default::default()
        };
        let scenarios = vec![
            Scenario {
                name: "first page".into(),
                requests: vec![proto::ListUsersRequest::default()],
            },
            Scenario {
                // A common last name, a name and number, a first name, an
                // email fragment: from thousands of matches to a few.
                name: "query".into(),
                requests: vec![
                    query("hopper"),
                    query("ritchie12"),
                    query("grace"),
                    query("knuth4242"),
                    query("linus.torv"),
                ],
            },
            Scenario {
                name: "role".into(),
                requests: vec![role("admin"), role("owner"), role("supervisor")],
            },
            Scenario {
                name: "page 1000 by tokens".into(),
                requests: vec![
                    page_1000(&mut client, token, proto::ListUsersRequest::default()).await,
                ],
            },
            Scenario {
                name: "last active: first page".into(),
                requests: vec![by_activity.clone()],
            },
            Scenario {
                name: "last active: page 1000".into(),
                requests: vec![page_1000(&mut client, token, by_activity.clone()).await],
            },
        ];
        let mut outcomes = Vec::new();
        for scenario in scenarios {
            // Warm the pool's connections and Postgres's buffers.
            drive(channels, token, &scenario, Duration::from_secs(1)).await;
            outcomes.push(drive(channels, token, &scenario, duration).await);
        }
        outcomes
    }

    /// `IN_FLIGHT` callers, each calling again as soon as its call returns.
    async fn drive(
        channels: &[Channel],
        token: &str,
        scenario: &Scenario,
        duration: Duration,
    ) -> Outcome {
        let requests = Arc::new(scenario.requests.clone());
        let started = Instant::now();
        let callers: Vec<_> = (0..IN_FLIGHT)
            .map(|i| {
                let mut client = UserServiceClient::new(channels[i % channels.len()].clone());
                let requests = requests.clone();
                let token = token.to_owned();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut total_size = 0;
                    let mut n = i;
                    while started.elapsed() < duration {
                        let request = requests[n % requests.len()].clone();
                        n += 1;
                        let call = Instant::now();
                        total_size = list(&mut client, &token, request).await.total_size;
                        latencies.push(call.elapsed());
                    }
                    (latencies, total_size)
                })
            })
            .collect();
        let mut latencies = Vec::new();
        let mut total_size = 0;
        for caller in callers {
            let (mine, total) = caller.await.unwrap();
            latencies.extend(mine);
            total_size = total;
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        Outcome {
            name: scenario.name.clone(),
            calls: latencies.len(),
            elapsed,
            p50: at(0.50),
            p99: at(0.99),
            total_size,
        }
    }

    pub fn print(outcomes: &[Outcome]) {
        println!(
            "\nListUsers, {IN_FLIGHT} in flight\n{:<26} {:>8} {:>9} {:>9} {:>9} {:>11} {:>7}",
            "scenario", "calls", "calls/s", "p50 ms", "p99 ms", "target p99", "result"
        );
        for o in outcomes {
            println!(
                "{:<26} {:>8} {:>9.0} {:>9.2} {:>9.2} {:>8} ms {:>7}",
                o.name,
                o.calls,
                o.calls as f64 / o.elapsed.as_secs_f64(),
                o.p50.as_secs_f64() * 1000.0,
                o.p99.as_secs_f64() * 1000.0,
                TARGET_P99.as_millis(),
                if o.passed() { "pass" } else { "FAIL" },
            );
        }
        let sizes: Vec<String> = outcomes
            .iter()
            .map(|o| format!("{}: {}", o.name, o.total_size))
            .collect();
        println!("(last total_size seen: {})", sizes.join(", "));
    }
}
