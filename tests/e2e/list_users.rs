//! Reading users: GetUser, and ListUsers with its filters, its query, its
//! pages and its counts.

use uuid::Uuid;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    TestApp, deactivate, expect_invalid_argument, expect_not_found, get_user_request, id_set,
    rename, report_to, user_ids, violated_fields,
};

#[tokio::test]
async fn get_user_returns_the_user_as_listed() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner().users;
    let (ann, _) = app.member("Ann.Lee@Example.com", "agent").await;

    let read = app.user(&ann.id).await;
    assert_eq!(read, ann);
    assert_eq!(read.email, "Ann.Lee@Example.com");
    assert_eq!(read.workspace_id, app.workspace_id.to_string());
    assert!(read.create_time.is_some() && read.update_time.is_some());
    let listed = app.list_users(proto::ListUsersRequest::default()).await;
    assert!(listed.users.contains(&read));

    expect_not_found(
        owner
            .get_user(get_user_request(&Uuid::now_v7().to_string()))
            .await,
        "USER_NOT_FOUND",
    );
    let status = expect_invalid_argument(
        owner.get_user(get_user_request("nope")).await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["user_id"]);
}

#[tokio::test]
async fn list_users_filters_by_status_role_and_manager() {
    let app = TestApp::spawn().await;
    let owner = app.owner_id.to_string();
    let (ann, _) = app.member("ann@example.com", "agent").await;
    let (bob, _) = app.member("bob@example.com", "agent").await;
    let (sue, _) = app.member("sue@example.com", "supervisor").await;
    let (adam, _) = app.member("adam@example.com", "admin").await;
    app.manage(&ann.id, report_to(&sue.id)).await.unwrap();
    app.manage(&bob.id, report_to(&sue.id)).await.unwrap();
    app.manage(&sue.id, report_to(&owner)).await.unwrap();
    app.manage(&bob.id, deactivate("Left")).await.unwrap();

    let cases: Vec<(proto::ListUsersRequest, Vec<&str>)> = vec![
        (
            proto::ListUsersRequest::default(),
            vec![&owner, &ann.id, &bob.id, &sue.id, &adam.id],
        ),
        (
            proto::ListUsersRequest {
                status: proto::UserStatus::Deactivated as i32,
                ..Default::default()
            },
            vec![&bob.id],
        ),
        (
            proto::ListUsersRequest {
                status: proto::UserStatus::Active as i32,
                ..Default::default()
            },
            vec![&owner, &ann.id, &sue.id, &adam.id],
        ),
        (
            proto::ListUsersRequest {
                role: "agent".into(),
                ..Default::default()
            },
            vec![&ann.id, &bob.id],
        ),
        (
            proto::ListUsersRequest {
                role: "agent".into(),
                status: proto::UserStatus::Active as i32,
                ..Default::default()
            },
            vec![&ann.id],
        ),
        (
            proto::ListUsersRequest {
                role: "owner".into(),
                ..Default::default()
            },
            vec![&owner],
        ),
        (
            proto::ListUsersRequest {
                reporting_to_user_id: sue.id.clone(),
                ..Default::default()
            },
            vec![&ann.id, &bob.id],
        ),
        (
            proto::ListUsersRequest {
                reporting_to_user_id: owner.clone(),
                ..Default::default()
            },
            vec![&sue.id],
        ),
        (
            proto::ListUsersRequest {
                reporting_to_user_id: sue.id.clone(),
                status: proto::UserStatus::Deactivated as i32,
                role: "agent".into(),
                ..Default::default()
            },
            vec![&bob.id],
        ),
        (
            proto::ListUsersRequest {
                role: "supervisor".into(),
                reporting_to_user_id: sue.id.clone(),
                ..Default::default()
            },
            vec![],
        ),
    ];
    for (filter, expected) in cases {
        let page = app.list_users(filter.clone()).await;
        assert_eq!(
            user_ids(&page.users),
            id_set(&expected),
            "filter {filter:?}"
        );
        assert_eq!(
            page.total_size,
            i32::try_from(expected.len()).unwrap(),
            "total_size of {filter:?}"
        );
        // Oldest first.
        let order: Vec<&str> = page.users.iter().map(|u| u.id.as_str()).collect();
        let mut sorted = order.clone();
        sorted.sort_by_key(|id| {
            [&owner, &ann.id, &bob.id, &sue.id, &adam.id]
                .iter()
                .position(|x| x.as_str() == *id)
        });
        assert_eq!(order, sorted, "oldest first for {filter:?}");
    }
}

#[tokio::test]
async fn list_users_query_matches_email_or_name_ignoring_case_and_wildcards_literally() {
    let app = TestApp::spawn().await;
    let owner = app.owner_id.to_string();
    let (ann, _) = app.member("ann_lee@example.com", "agent").await;
    let (annx, _) = app.member("annxlee@example.com", "agent").await;
    let (bob, _) = app.member("bob@example.com", "agent").await;
    let (carl, _) = app.member("carl@example.com", "agent").await;
    let (dora, _) = app.member("dora@example.com", "agent").await;
    for (user, name) in [
        (&ann, "Ann Lee"),
        (&annx, "Annx Lee"),
        (&bob, "100% Bob"),
        (&carl, "1000 Carl"),
        (&dora, "Zoë Ärger \\ Dora"),
    ] {
        app.manage(&user.id, rename(name)).await.unwrap();
    }

    let cases: Vec<(&str, Vec<&str>)> = vec![
        // Email, ignoring case.
        ("ANN_LEE@", vec![&ann.id]),
        (
            "Example.COM",
            vec![&owner, &ann.id, &annx.id, &bob.id, &carl.id, &dora.id],
        ),
        // Display name, ignoring case.
        ("olive", vec![&owner]),
        ("ANN", vec![&ann.id, &annx.id]),
        ("ärger", vec![&dora.id]),
        ("ÄRGER", vec![&dora.id]),
        ("zoË", vec![&dora.id]),
        // `_`, `%` and `\` are plain characters.
        ("_", vec![&ann.id]),
        ("n_l", vec![&ann.id]),
        ("%", vec![&bob.id]),
        ("100%", vec![&bob.id]),
        ("0% b", vec![&bob.id]),
        ("\\", vec![&dora.id]),
        ("nobody", vec![]),
    ];
    for (query, expected) in cases {
        let page = app
            .list_users(proto::ListUsersRequest {
                query: query.into(),
                ..Default::default()
            })
            .await;
        assert_eq!(user_ids(&page.users), id_set(&expected), "query {query:?}");
        assert_eq!(
            page.total_size,
            i32::try_from(expected.len()).unwrap(),
            "total_size of query {query:?}"
        );
    }

    // The query combines with the other filters.
    app.manage(&annx.id, deactivate("Left")).await.unwrap();
    let page = app
        .list_users(proto::ListUsersRequest {
            query: "lee".into(),
            status: proto::UserStatus::Active as i32,
            ..Default::default()
        })
        .await;
    assert_eq!(user_ids(&page.users), id_set(&[&ann.id]));
    assert_eq!(page.total_size, 1);
}

#[tokio::test]
async fn list_users_pages_walk_every_user_once_and_count_all_matches() {
    let app = TestApp::spawn().await;
    let mut everyone = vec![app.owner_id.to_string()];
    for (email, role) in [
        ("a@example.com", "agent"),
        ("b@example.com", "agent"),
        ("c@example.com", "supervisor"),
        ("d@example.com", "agent"),
        ("e@example.com", "admin"),
        ("f@example.com", "agent"),
    ] {
        everyone.push(app.member(email, role).await.0.id);
    }

    for page_size in [1, 2, 4, 7, 200] {
        let pages = app
            .user_pages(proto::ListUsersRequest {
                page_size,
                ..Default::default()
            })
            .await;
        let walked_ids: Vec<String> = users_of(&pages).map(|u| u.id.clone()).collect();
        let totals: Vec<i32> = pages.iter().map(|page| page.total_size).collect();
        assert_eq!(
            walked_ids, everyone,
            "page size {page_size}: oldest first, once each"
        );
        assert!(
            totals.iter().all(|&t| t == 7),
            "page size {page_size}: {totals:?}"
        );
        let expected_pages = 7_usize.div_ceil(usize::try_from(page_size).unwrap());
        assert_eq!(totals.len(), expected_pages, "page size {page_size}");
    }

    // With a filter, pages walk the matches only.
    let agents = proto::ListUsersRequest {
        page_size: 1,
        role: "agent".into(),
        ..Default::default()
    };
    let pages = app.user_pages(agents).await;
    let walked_ids: Vec<&str> = users_of(&pages).map(|u| u.id.as_str()).collect();
    let totals: Vec<i32> = pages.iter().map(|page| page.total_size).collect();
    assert_eq!(
        walked_ids,
        [&everyone[1], &everyone[2], &everyone[4], &everyone[6]]
    );
    assert!(totals.iter().all(|&t| t == 4), "{totals:?}");
}

/// Every page of a walk: (total_size, total_size_is_estimate).
async fn totals_of_walk(app: &TestApp, filter: proto::ListUsersRequest) -> Vec<(i32, bool)> {
    let pages = app.user_pages(filter).await;
    pages
        .iter()
        .map(|page| (page.total_size, page.total_size_is_estimate))
        .collect()
}

fn users_of(pages: &[proto::ListUsersResponse]) -> impl Iterator<Item = &proto::User> {
    pages.iter().flat_map(|page| &page.users)
}

#[tokio::test]
async fn list_users_counts_exactly_up_to_the_limit_and_estimates_above_it() {
    let app = TestApp::spawn_with(|s| s.list_exact_count_limit = 3).await;
    app.member("a1@example.com", "agent").await;
    let db = app.db().await;
    // Statistics from when two users existed.
    db.batch_execute("ANALYZE users").await.unwrap();
    app.member("a2@example.com", "agent").await;
    app.member("a3@example.com", "agent").await;
    app.member("s1@example.com", "supervisor").await;
    app.member("s2@example.com", "supervisor").await;
    let everyone = proto::ListUsersRequest {
        page_size: 2,
        ..Default::default()
    };

    // The stale statistics expect fewer than the limit; the count stops at
    // the limit and says "more than 3", flagged as an estimate.
    let page = app.list_users(everyone.clone()).await;
    assert_eq!(
        (page.total_size, page.total_size_is_estimate),
        (4, true),
        "a count beyond the limit is cut short"
    );

    // With fresh statistics: the planner's estimate, on every page.
    db.batch_execute("ANALYZE users").await.unwrap();
    assert_eq!(totals_of_walk(&app, everyone.clone()).await, [(6, true); 3]);

    // Matches up to the limit are counted exactly, on every page.
    let agents = proto::ListUsersRequest {
        page_size: 1,
        role: "agent".into(),
        ..Default::default()
    };
    assert_eq!(totals_of_walk(&app, agents).await, [(3, false); 3]);
    let supervisors = proto::ListUsersRequest {
        page_size: 1,
        role: "supervisor".into(),
        ..Default::default()
    };
    assert_eq!(totals_of_walk(&app, supervisors).await, [(2, false); 2]);

    // A listing that fits in one page is exact whatever the limit.
    let whole = app
        .list_users(proto::ListUsersRequest {
            page_size: 50,
            ..everyone
        })
        .await;
    assert_eq!(whole.users.len(), 6);
    assert_eq!((whole.total_size, whole.total_size_is_estimate), (6, false));
}

/// A rare search term's page and count come from one read of its matches;
/// a common one's page walks the order's index and its total is the
/// estimate. Either way the pages walk every match once, in order, in both
/// orders, and a page that finds its matches gone still counts them.
#[tokio::test]
async fn search_pages_walk_every_match_once_in_both_orders_with_their_count() {
    let app = TestApp::spawn_with(|s| s.list_exact_count_limit = 4).await;
    let mut zeds = Vec::new();
    for n in 0..6 {
        zeds.push(
            app.member(&format!("zed{n}@example.com"), "agent")
                .await
                .0
                .id,
        );
    }
    let mut yans = Vec::new();
    for n in 0..3 {
        yans.push(
            app.member(&format!("yan{n}@example.com"), "agent")
                .await
                .0
                .id,
        );
    }
    // Some were active, the rest never: the last-active order has both parts.
    let db = app.db().await;
    for (user, minutes_ago) in [
        (&zeds[1], 5.0),
        (&zeds[3], 1.0),
        (&zeds[4], 9.0),
        (&yans[2], 2.0),
    ] {
        db.execute(
            "UPDATE users SET last_active_at = now() - make_interval(secs => $1::float8 * 60) \
             WHERE id = $2::text::uuid",
            &[&minutes_ago, user],
        )
        .await
        .unwrap();
    }
    let by_activity = |ids: &[String], active: &[usize]| -> Vec<String> {
        let mut never: Vec<String> = (0..ids.len())
            .filter(|n| !active.contains(n))
            .map(|n| ids[n].clone())
            .collect();
        never.sort_by(|a, b| b.cmp(a));
        active
            .iter()
            .map(|&n| ids[n].clone())
            .chain(never)
            .collect()
    };
    let search = |query: &str, order_by: &str, page_size| proto::ListUsersRequest {
        query: query.into(),
        order_by: order_by.into(),
        page_size,
        ..Default::default()
    };
    for page_size in [1, 2, 4] {
        for (order_by, zed_order, yan_order) in [
            ("", zeds.clone(), yans.clone()),
            (
                "last_active_time desc",
                by_activity(&zeds, &[3, 1, 4]),
                by_activity(&yans, &[2]),
            ),
        ] {
            // Three match: counted exactly, on every page.
            let pages = app.user_pages(search("YAN", order_by, page_size)).await;
            let walked: Vec<String> = users_of(&pages).map(|u| u.id.clone()).collect();
            assert_eq!(
                walked, yan_order,
                "yan, {order_by:?}, page size {page_size}"
            );
            for page in &pages {
                assert_eq!((page.total_size, page.total_size_is_estimate), (3, false));
            }
            // Six match, above the limit of 4: an estimate of more than 4.
            let pages = app.user_pages(search("zed", order_by, page_size)).await;
            let walked: Vec<String> = users_of(&pages).map(|u| u.id.clone()).collect();
            assert_eq!(
                walked, zed_order,
                "zed, {order_by:?}, page size {page_size}"
            );
            for page in &pages {
                assert!(
                    page.total_size > 4 && page.total_size_is_estimate,
                    "zed, page size {page_size}: {page:?}"
                );
            }
        }
    }

    // Where every search is above the limit, each page walks the order's
    // index and the total is the planner's estimate.
    let estimating = app.spawn_replica(|s| s.list_exact_count_limit = 0).await;
    for order_by in ["", "last_active_time desc"] {
        let pages = estimating.user_pages(search("zed", order_by, 2)).await;
        let walked: Vec<String> = users_of(&pages).map(|u| u.id.clone()).collect();
        let expected = if order_by.is_empty() {
            zeds.clone()
        } else {
            by_activity(&zeds, &[3, 1, 4])
        };
        assert_eq!(walked, expected, "zed, estimated, {order_by:?}");
        assert!(pages.iter().all(|page| page.total_size_is_estimate));
    }

    // The matches after the first page stop matching before the next page
    // is read: that page is empty and says how many match now.
    let first = app.list_users(search("yan", "", 1)).await;
    db.execute(
        "UPDATE users SET email_normalized = 'gone' || id || '@example.com', display_name = 'Gone' \
         WHERE id = ANY($1::text[]::uuid[])",
        &[&&yans[1..]],
    )
    .await
    .unwrap();
    let next = app
        .list_users(proto::ListUsersRequest {
            page_token: first.next_page_token,
            ..search("yan", "", 1)
        })
        .await;
    assert!(next.users.is_empty(), "{next:?}");
    assert_eq!((next.total_size, next.total_size_is_estimate), (1, false));
}

#[tokio::test]
async fn a_page_token_used_with_different_filters_is_refused() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner().users;
    app.member("a@example.com", "agent").await;
    app.member("b@example.com", "agent").await;
    app.member("c@example.com", "supervisor").await;

    let first = app
        .list_users(proto::ListUsersRequest {
            page_size: 1,
            ..Default::default()
        })
        .await;
    assert!(!first.next_page_token.is_empty());

    for different in [
        proto::ListUsersRequest {
            role: "agent".into(),
            ..Default::default()
        },
        proto::ListUsersRequest {
            status: proto::UserStatus::Active as i32,
            ..Default::default()
        },
        proto::ListUsersRequest {
            query: "example".into(),
            ..Default::default()
        },
        proto::ListUsersRequest {
            reporting_to_user_id: app.owner_id.to_string(),
            ..Default::default()
        },
    ] {
        let status = expect_invalid_argument(
            owner
                .list_users(proto::ListUsersRequest {
                    page_size: 1,
                    page_token: first.next_page_token.clone(),
                    ..different.clone()
                })
                .await,
            "INVALID_PAGE_TOKEN",
        );
        assert_eq!(violated_fields(&status), ["page_token"], "{different:?}");
    }

    // A token of another listing, or a made-up one, is refused too.
    let log = owner
        .list_activity(proto::ListActivityRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for token in [log.next_page_token, "not-a-token".to_owned()] {
        expect_invalid_argument(
            owner
                .list_users(proto::ListUsersRequest {
                    page_size: 1,
                    page_token: token,
                    ..Default::default()
                })
                .await,
            "INVALID_PAGE_TOKEN",
        );
    }

    // The same filters with another page size continue the listing.
    let next = app
        .list_users(proto::ListUsersRequest {
            page_size: 10,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await;
    assert_eq!(next.users.len(), 3);
    assert!(next.next_page_token.is_empty());
}

#[tokio::test]
async fn a_page_token_continues_on_another_replica_but_not_in_another_installation() {
    let app = TestApp::spawn().await;
    app.member("a@example.com", "agent").await;
    let replica = app.spawn_replica(|_| {}).await;
    let first_page = proto::ListUsersRequest {
        page_size: 1,
        ..Default::default()
    };
    let first = app.list_users(first_page.clone()).await;
    let next_page = proto::ListUsersRequest {
        page_token: first.next_page_token,
        ..first_page
    };

    // Every replica derives the same key from the installation's secret.
    let next = replica.list_users(next_page.clone()).await;
    assert_eq!(next.users.len(), 1);
    assert_ne!(next.users, first.users);

    // Another installation has another secret: the token is forged there.
    let other = TestApp::spawn().await;
    other.member("a@example.com", "agent").await;
    let status = expect_invalid_argument(
        other.as_owner().users.list_users(next_page).await,
        "INVALID_PAGE_TOKEN",
    );
    assert_eq!(violated_fields(&status), ["page_token"]);
}
