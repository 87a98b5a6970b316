//! Access that ends by itself. A user's calls are refused from the moment
//! their access expiry passes (the caller check compares it with the clock
//! at every call, on every replica); this sweep then deactivates them, so
//! they leave the seat count and the lists of active users, with an
//! activity entry and a `user.access_expired` event each.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{
    AppState, Record,
    unit_of_work::{UnitOfWork, retrying},
};
use crate::{
    domain::{
        Error,
        activity::{Action, FieldChange},
        user::ACCESS_EXPIRED_REASON,
    },
    events,
    store::users,
};

/// Users one sweep transaction deactivates at most.
const BATCH: i64 = 200;

/// Sweeps every `interval` until `shutdown`; a failed round is logged and
/// retried at the next one.
pub async fn run(state: std::sync::Arc<AppState>, interval: Duration, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match sweep_once(&state).await {
            Ok(0) => {}
            Ok(swept) => tracing::info!(users = swept, "deactivated users whose access ended"),
            Err(err) => tracing::warn!(error = %err, "access expiry sweep failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Deactivates every active user whose access has ended, a batch per
/// transaction; how many.
pub async fn sweep_once(state: &AppState) -> Result<usize, Error> {
    let mut swept = 0;
    loop {
        let expired = retrying(|| async {
            let unit = UnitOfWork::begin(state).await?;
            let expired =
                users::deactivate_expired_access(unit.tx(), ACCESS_EXPIRED_REASON, BATCH).await?;
            for user in &expired {
                let changes = vec![
                    FieldChange::new("status", "ACTIVE", "DEACTIVATED"),
                    FieldChange::new("deactivation_reason", "", ACCESS_EXPIRED_REASON),
                ];
                let action = Action::UserAccessExpired;
                // No actor: the service did it, as the user's expiry said.
                let event =
                    events::user_changed(action, user, events::Actor::SERVICE, &changes, "");
                unit.record(
                    Record {
                        workspace_id: user.workspace_id,
                        actor_id: None,
                        actor_directory_token_id: None,
                        action,
                        target_user_id: Some(user.id),
                        target_invitation_id: None,
                        changes,
                        request_id: "",
                    },
                    event,
                )?;
            }
            unit.commit().await?;
            Ok(expired)
        })
        .await?;
        swept += expired.len();
        if expired.len() < usize::try_from(BATCH).unwrap_or(usize::MAX) {
            break;
        }
    }
    if swept > 0 {
        // Every replica's cache drops them before the next round.
        state.callers.sync(&state.pool).await;
    }
    Ok(swept)
}
