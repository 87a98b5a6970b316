//! What the test's database holds, read straight from it: the outbox as
//! the relay would read it, counts, and a clock moved for one invitation.

use std::time::Duration;

use prost::Message;
use tokio_postgres::types::ToSql;
use uuid::Uuid;
use wowchat_users_api::events::v1 as events;

use crate::TestApp;

/// One outbox row.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub routing_key: String,
    pub message_type: String,
    pub payload: Vec<u8>,
    pub request_id: String,
}

impl TestApp {
    /// A direct connection to this test's database, for assertions.
    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls)
                .await
                .expect("connects to the test database");
        tokio::spawn(connection);
        client
    }

    /// The single number `sql` selects (a count).
    pub async fn count(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> i64 {
        let row = self
            .db()
            .await
            .query_one(sql, params)
            .await
            .expect("count query");
        row.try_get(0).expect("a count")
    }

    /// How many outbox rows have this routing key.
    pub async fn outbox_count(&self, routing_key: &str) -> i64 {
        let sql = "SELECT count(*) FROM outbox WHERE routing_key = $1";
        self.count(sql, &[&routing_key]).await
    }

    /// How many activity entries record `action`.
    pub async fn activity_count(&self, action: &str) -> i64 {
        let sql = "SELECT count(*) FROM activity WHERE action = $1";
        self.count(sql, &[&action]).await
    }

    /// The workspace's active owners.
    pub async fn active_owners(&self) -> i64 {
        let sql = "SELECT count(*) FROM users \
                   WHERE workspace_id = $1 AND role = 'owner' AND status = 'ACTIVE'";
        self.count(sql, &[&self.workspace_id]).await
    }

    /// Every outbox row, oldest first.
    pub async fn outbox(&self) -> Vec<OutboxRow> {
        let sql = "SELECT routing_key, message_type, payload, request_id FROM outbox \
                   ORDER BY created_at, id";
        let rows = self.db().await.query(sql, &[]).await.expect("outbox query");
        let read = |row: &tokio_postgres::Row| -> Result<OutboxRow, tokio_postgres::Error> {
            Ok(OutboxRow {
                routing_key: row.try_get(0)?,
                message_type: row.try_get(1)?,
                payload: row.try_get(2)?,
                request_id: row.try_get(3)?,
            })
        };
        rows.iter()
            .map(|row| read(row).expect("an outbox row"))
            .collect()
    }

    /// The payloads of the outbox rows with this routing key, oldest first.
    pub async fn outbox_payloads(&self, routing_key: &str) -> Vec<Vec<u8>> {
        let rows = self.outbox().await.into_iter();
        rows.filter(|row| row.routing_key == routing_key)
            .map(|row| row.payload)
            .collect()
    }

    /// The token the mailer received for the invitation, read from the newest
    /// mail command in the outbox, as the mailer would read it.
    pub async fn invitation_token(&self, invitation_id: &str) -> String {
        let commands = self.outbox_payloads("mail.invitation").await;
        commands
            .iter()
            .rev()
            .map(|payload| events::SendInvitationEmail::decode(payload.as_slice()).unwrap())
            .find(|mail| {
                mail.invitation
                    .as_ref()
                    .is_some_and(|i| i.id == invitation_id)
            })
            .map(|mail| open_token(&mail))
            .expect("a mail command for the invitation")
    }

    /// The invitation mail commands sent to `email`, oldest first.
    pub async fn invitation_mails_to(&self, email: &str) -> Vec<events::SendInvitationEmail> {
        self.outbox_payloads("mail.invitation")
            .await
            .iter()
            .map(|payload| events::SendInvitationEmail::decode(payload.as_slice()).unwrap())
            .filter(|mail| mail.invitation.as_ref().is_some_and(|i| i.email == email))
            .collect()
    }

    /// The confirmation tokens sent to `email` for join requests, oldest
    /// first, opened as the mailer would.
    pub async fn join_confirmation_tokens(&self, email: &str) -> Vec<String> {
        self.outbox_payloads("mail.join_request_confirmation")
            .await
            .iter()
            .map(|payload| {
                events::SendJoinRequestConfirmationEmail::decode(payload.as_slice()).unwrap()
            })
            .filter(|mail| mail.join_request.as_ref().is_some_and(|r| r.email == email))
            .map(|mail| {
                let id = mail
                    .join_request
                    .as_ref()
                    .map(|r| r.id.clone())
                    .unwrap_or_default();
                open_sealed(&mail.token, mail.sealed_token.as_ref(), &id)
            })
            .collect()
    }

    /// Waits until `n` queries of this test's database wait for a lock.
    pub async fn wait_for_lock_waiters(&self, n: i64) {
        let sql = "SELECT count(*) FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
        let db = self.db().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let waiting: i64 = db.query_one(sql, &[]).await.unwrap().try_get(0).unwrap();
            if waiting >= n {
                return;
            }
            let late = tokio::time::Instant::now() >= deadline;
            assert!(!late, "{waiting} of {n} queries wait for a lock");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Makes the invitation's expiry a minute ago, straight in the database.
    pub async fn expire_invitation(&self, invitation_id: &str) {
        let id: Uuid = invitation_id.parse().unwrap();
        let sql = "UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = $1";
        let updated = self.db().await.execute(sql, &[&id]).await.unwrap();
        assert_eq!(updated, 1);
    }
}

/// The invitation token of a mail command: opened with the test key when
/// sealed (as the mailer does), else as it came.
pub fn open_token(mail: &events::SendInvitationEmail) -> String {
    let invitation_id = mail
        .invitation
        .as_ref()
        .map(|i| i.id.clone())
        .unwrap_or_default();
    open_sealed(&mail.token, mail.sealed_token.as_ref(), &invitation_id)
}

/// A token as a mail command carries it: opened with the test key when
/// sealed (bound to `bound_to`), else as it came.
fn open_sealed(clear: &str, sealed: Option<&events::SealedToken>, bound_to: &str) -> String {
    let Some(sealed) = sealed else {
        return clear.to_owned();
    };
    let keys = wowchat_platform::sealing::TokenKeys::parse(crate::MAIL_TOKEN_KEYS).unwrap();
    let sealed = wowchat_platform::sealing::Sealed {
        key_id: sealed.key_id.clone(),
        nonce: sealed.nonce.clone(),
        ciphertext: sealed.ciphertext.clone(),
    };
    keys.open(&sealed, bound_to.as_bytes())
        .expect("the test key opens the token")
}
