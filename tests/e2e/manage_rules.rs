//! The rules between users that ManageUser keeps: no reporting cycles, no
//! reporting to a deactivated or unknown user, and always an active owner,
//! even when two owners act on each other at once.

use tonic::Code;
use uuid::Uuid;
use wowchat_users_api::v1::{self as proto, manage_user_request::Action};
use wowchat_users_testkit::{
    TestApp, authed, change_role, deactivate, expect_invalid_argument, expect_refused,
    manage_request as on, reactivate, reason, report_to, violated_fields,
};

#[tokio::test]
async fn making_a_manager_report_to_their_own_report_is_a_reporting_cycle() {
    let app = TestApp::spawn().await;
    let (a, _) = app.member("a@example.com", "agent").await;
    let (b, _) = app.member("b@example.com", "supervisor").await;
    app.manage(&a.id, report_to(&b.id)).await.unwrap();
    let b_before = app.user(&b.id).await;

    expect_refused(app.manage(&b.id, report_to(&a.id)).await, "REPORTING_CYCLE");
    let b_after = app.user(&b.id).await;
    assert_eq!(b_after.reporting_to_user_id, None);
    assert_eq!(b_after.etag, b_before.etag);
}

#[tokio::test]
async fn closing_a_longer_reporting_chain_into_a_loop_is_a_reporting_cycle() {
    let app = TestApp::spawn().await;
    let (a, _) = app.member("a@example.com", "agent").await;
    let (b, _) = app.member("b@example.com", "agent").await;
    let (c, _) = app.member("c@example.com", "supervisor").await;
    let (d, _) = app.member("d@example.com", "admin").await;
    // a -> b -> c -> d
    for (user, manager) in [(&a, &b), (&b, &c), (&c, &d)] {
        app.manage(&user.id, report_to(&manager.id)).await.unwrap();
    }

    for top_to in [&a, &b] {
        expect_refused(
            app.manage(&d.id, report_to(&top_to.id)).await,
            "REPORTING_CYCLE",
        );
    }
    expect_refused(app.manage(&c.id, report_to(&a.id)).await, "REPORTING_CYCLE");
    let d_after = app.user(&d.id).await;
    assert_eq!(d_after.reporting_to_user_id, None);

    // Not a cycle: the top of the chain may report to someone outside it,
    // and a member may skip a level.
    app.manage(&d.id, report_to(&app.owner_id.to_string()))
        .await
        .unwrap();
    app.manage(&a.id, report_to(&c.id)).await.unwrap();
}

#[tokio::test]
async fn reporting_to_oneself_is_a_reporting_cycle() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    expect_refused(
        app.manage(&agent.id, report_to(&agent.id)).await,
        "REPORTING_CYCLE",
    );
    let owner = app.owner_id.to_string();
    expect_refused(
        app.manage(&owner, report_to(&owner)).await,
        "REPORTING_CYCLE",
    );
}

#[tokio::test]
async fn reporting_to_a_deactivated_user_is_refused() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let (supervisor, _) = app.member("sue@example.com", "supervisor").await;
    app.manage(&supervisor.id, deactivate("Left"))
        .await
        .unwrap();

    expect_refused(
        app.manage(&agent.id, report_to(&supervisor.id)).await,
        "REPORTING_TO_INACTIVE",
    );
    let read = app.user(&agent.id).await;
    assert_eq!(read.reporting_to_user_id, None);
}

#[tokio::test]
async fn reporting_to_an_unknown_user_is_invalid() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let status = expect_invalid_argument(
        app.manage(&agent.id, report_to(&Uuid::now_v7().to_string()))
            .await,
        "REPORTING_TO_NOT_FOUND",
    );
    assert_eq!(
        violated_fields(&status),
        ["set_reporting_to.reporting_to_user_id"]
    );
}

#[tokio::test]
async fn the_only_owner_cannot_be_demoted_or_deactivated_even_by_themselves() {
    let app = TestApp::spawn().await;
    let owner = app.owner_id.to_string();
    let before = app.user(&owner).await;

    for role in ["admin", "agent"] {
        expect_refused(app.manage(&owner, change_role(role)).await, "LAST_OWNER");
    }
    expect_refused(app.manage(&owner, deactivate("Bye")).await, "LAST_OWNER");

    let after = app.user(&owner).await;
    assert_eq!(after.role, "owner");
    assert_eq!(after.status(), proto::UserStatus::Active);
    assert_eq!(after.etag, before.etag);
    assert_eq!(app.active_owners().await, 1);
}

#[tokio::test]
async fn with_a_second_active_owner_the_first_can_be_demoted() {
    let app = TestApp::spawn().await;
    let (second, second_token) = app.member("second@example.com", "owner").await;
    assert_eq!(second.role, "owner");

    let demoted = app
        .as_(&second_token)
        .users
        .manage_user(on(&app.owner_id.to_string(), change_role("admin")))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(demoted.role, "admin");
    assert_eq!(app.active_owners().await, 1);

    // Now the second owner is the last one.
    expect_refused(
        app.as_(&second_token)
            .users
            .manage_user(on(&second.id, change_role("admin")))
            .await,
        "LAST_OWNER",
    );
    expect_refused(
        app.as_(&second_token)
            .users
            .manage_user(on(&second.id, deactivate("Bye")))
            .await,
        "LAST_OWNER",
    );
}

#[tokio::test]
async fn an_owner_may_deactivate_themselves_while_another_owner_is_active() {
    let app = TestApp::spawn().await;
    let (second, second_token) = app.member("second@example.com", "owner").await;

    let gone = app
        .as_(&second_token)
        .users
        .manage_user(on(&second.id, deactivate("Sabbatical")))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(gone.status(), proto::UserStatus::Deactivated);
    assert_eq!(app.active_owners().await, 1);
}

#[tokio::test]
async fn a_deactivated_owner_does_not_count_as_another_owner() {
    let app = TestApp::spawn().await;
    let (second, _) = app.member("second@example.com", "owner").await;
    app.manage(&second.id, deactivate("Left")).await.unwrap();

    let owner = app.owner_id.to_string();
    expect_refused(app.manage(&owner, change_role("admin")).await, "LAST_OWNER");
    expect_refused(app.manage(&owner, deactivate("Bye")).await, "LAST_OWNER");
    // A deactivated owner may still be demoted: it leaves the active owner.
    let demoted = app.manage(&second.id, change_role("admin")).await.unwrap();
    assert_eq!(demoted.role, "admin");
    assert_eq!(app.active_owners().await, 1);
}

/// Two owners each apply `action` to the other at the same moment, several
/// times: exactly one wins each round and an active owner always remains.
async fn race_two_owners(action: fn() -> Action, restore: fn() -> Action) {
    let app = TestApp::spawn().await;
    let (second, second_token) = app.member("second@example.com", "owner").await;
    let owners = [
        (app.owner_id.to_string(), app.owner_token.clone()),
        (second.id.clone(), second_token),
    ];
    let client = app.client().await;

    for round in 0..5 {
        let calls = [(0, 1), (1, 0)].map(|(actor, target)| {
            let mut client = client.clone();
            let request = authed(&owners[actor].1, on(&owners[target].0, action()));
            async move { client.manage_user(request).await }
        });
        let [first, second] = calls;
        let (first, second) = tokio::join!(tokio::spawn(first), tokio::spawn(second));
        let outcomes = [first.unwrap(), second.unwrap()];

        let wins: Vec<usize> = (0..2).filter(|&i| outcomes[i].is_ok()).collect();
        assert_eq!(wins.len(), 1, "round {round}: {outcomes:?}");
        for failure in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            let refusal = (failure.code(), reason(failure));
            assert!(
                matches!(
                    (refusal.0, refusal.1.as_str()),
                    (Code::FailedPrecondition, "LAST_OWNER")
                        | (Code::PermissionDenied, "ROLE_ABOVE_CALLER")
                        | (Code::PermissionDenied, "USER_DEACTIVATED")
                ),
                "round {round}: unexpected refusal {failure:?}"
            );
        }
        assert_eq!(app.active_owners().await, 1, "round {round}");

        // The survivor (the winner) puts the loser back for the next round.
        let winner = wins[0];
        let loser = 1 - winner;
        app.as_(&owners[winner].1)
            .users
            .manage_user(on(&owners[loser].0, restore()))
            .await
            .unwrap();
        app.as_(&owners[winner].1)
            .users
            .manage_user(on(&owners[loser].0, change_role("owner")))
            .await
            .unwrap();
        assert_eq!(app.active_owners().await, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_owners_demoting_each_other_at_once_leave_exactly_one_active_owner() {
    race_two_owners(|| change_role("admin"), reactivate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_owners_deactivating_each_other_at_once_leave_exactly_one_active_owner() {
    race_two_owners(|| deactivate("Coup"), reactivate).await;
}
