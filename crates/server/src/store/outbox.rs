//! The transactional outbox: events written in the same transaction as the
//! change they announce, for the relay to publish.

use uuid::Uuid;

use super::GenericClient;
use crate::domain::Error;

/// One message to publish.
pub struct OutboxMessage {
    pub id: Uuid,
    pub workspace_id: Uuid,
    /// The event type (`invitation.created`) or command route (`mail.invitation`).
    pub routing_key: &'static str,
    /// The protobuf message name of `payload`.
    pub message_type: &'static str,
    pub payload: Vec<u8>,
    pub request_id: String,
}

pub async fn insert(client: &impl GenericClient, message: &OutboxMessage) -> Result<(), Error> {
    let stmt = client
        .prepare_cached(
            "INSERT INTO outbox (id, workspace_id, routing_key, message_type, payload, request_id, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, now())",
        )
        .await?;
    client
        .execute(
            &stmt,
            &[
                &message.id,
                &message.workspace_id,
                &message.routing_key,
                &message.message_type,
                &message.payload,
                &message.request_id,
            ],
        )
        .await?;
    // Wakes relays listening for new rows as soon as this transaction commits.
    client.execute("NOTIFY outbox", &[]).await?;
    Ok(())
}
