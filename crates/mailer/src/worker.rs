//! One mail command, from delivery to ack: check its message id, decode it,
//! send its email at most once (dedupe in [`crate::store`]), retry transient
//! failures with backoff, publish the result event, and settle the delivery
//! (ack, dead-letter, or requeue for a later try).
//!
//! Logs name message ids, invitation ids, routing keys, attempts and file
//! paths; never the token, the link, the bodies or any credential.

use std::sync::Arc;

use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions},
    types::FieldTable,
};
use prost::Message as _;
use tokio::sync::watch;
use tracing::{Instrument, field};
use uuid::Uuid;
use wowchat_users_api::{
    topology::{REQUEST_ID_HEADER, commands, results},
    v1::{
        InvitationDelivered, InvitationDeliveryFailed, SendInvitationAcceptedEmail,
        SendInvitationEmail,
    },
};

use crate::{
    amqp::{Outgoing, Publisher, header_text},
    config::Config,
    render::Renderer,
    store::{SendOnce, Store},
    transport::{Sent, Transport},
};

/// How a delivery is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// Done (sent, or sent before): remove it.
    Ack,
    /// Hopeless: reject without requeue, so it lands in the dead-letter queue.
    DeadLetter,
    /// Not done, through no fault of its own (database, broker, shutdown):
    /// give it back for a later delivery. The dedupe table makes that safe.
    Requeue,
}

enum Command {
    Invitation(Box<SendInvitationEmail>),
    Accepted(Box<SendInvitationAcceptedEmail>),
}

/// The invitation a result event is about.
struct Subject {
    invitation_id: String,
    workspace_id: String,
}

pub struct Worker {
    pub config: Config,
    pub store: Store,
    pub transport: Transport,
    pub renderer: Renderer,
}

/// One delivery being handled, with what its handling needs.
struct Job<'a> {
    worker: &'a Worker,
    publisher: &'a Publisher,
    stop: watch::Receiver<bool>,
    message_id: String,
    routing_key: String,
    headers: Option<&'a FieldTable>,
}

impl Worker {
    /// Handles one delivery to the end. `stop` turns true on shutdown or when
    /// the connection is lost: waits between retries end early then, and the
    /// delivery is requeued; a send already under way is finished.
    pub async fn handle(
        self: Arc<Self>,
        delivery: Delivery,
        publisher: Publisher,
        stop: watch::Receiver<bool>,
    ) {
        let headers = delivery.properties.headers().as_ref();
        let message_id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str().trim().to_owned())
            // A control character (NUL above all) could never be stored, so
            // such a command would come back forever: treat it as missing.
            .filter(|id| !id.is_empty() && !id.chars().any(char::is_control));
        let span = tracing::info_span!(
            "mail",
            routing_key = %delivery.routing_key,
            message_id = message_id.as_deref().unwrap_or(""),
            request_id = header_text(headers, REQUEST_ID_HEADER).unwrap_or_default(),
            invitation_id = field::Empty,
            redelivered = delivery.redelivered,
        );
        async {
            let disposition = match message_id {
                None => {
                    tracing::error!("mail command without a usable message_id: dead-lettering it");
                    Disposition::DeadLetter
                }
                Some(message_id) => {
                    Job {
                        worker: &self,
                        publisher: &publisher,
                        stop,
                        message_id,
                        routing_key: delivery.routing_key.as_str().to_owned(),
                        headers,
                    }
                    .run(&delivery.data)
                    .await
                }
            };
            settle(&delivery, disposition).await;
        }
        .instrument(span)
        .await
    }
}

impl Job<'_> {
    async fn run(mut self, body: &[u8]) -> Disposition {
        let command = match decode(&self.routing_key, body) {
            Ok(command) => command,
            Err(why) => {
                tracing::error!(%why, "undecodable mail command: dead-lettering it");
                return Disposition::DeadLetter;
            }
        };
        let renderer = &self.worker.renderer;
        let (email, subject) = match &command {
            Command::Invitation(command) => {
                let subject = command.invitation.as_ref().map(|i| Subject {
                    invitation_id: i.id.clone(),
                    workspace_id: i.workspace_id.clone(),
                });
                (
                    renderer.invitation_email(command, &self.message_id),
                    subject,
                )
            }
            Command::Accepted(command) => {
                if let Some(invitation) = &command.invitation {
                    tracing::Span::current().record("invitation_id", invitation.id.as_str());
                }
                (
                    renderer.invitation_accepted_email(command, &self.message_id),
                    None,
                )
            }
        };
        if let Some(subject) = &subject {
            tracing::Span::current().record("invitation_id", subject.invitation_id.as_str());
        }
        let email = match email {
            Ok(email) => email,
            Err(e) => {
                tracing::error!(error = %e, "no email can be made of this command");
                return self.give_up(subject.as_ref(), e.to_string()).await;
            }
        };

        // Only invitation emails report a result.
        let has_result = subject.is_some();
        let result_message_id = Uuid::now_v7();
        let transport = &self.worker.transport;
        let max_attempts = self.worker.config.max_attempts;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self
                .worker
                .store
                .send_once(
                    &self.message_id,
                    &self.routing_key,
                    has_result,
                    result_message_id,
                    || transport.send(email.clone()),
                )
                .await;
            match outcome {
                Err(e) => {
                    // Nothing was sent; the database is the problem, not the email.
                    tracing::warn!(
                        error = format!("{e:#}"),
                        attempt,
                        "could not check whether it was sent"
                    );
                    if attempt >= max_attempts || !self.pause(attempt).await {
                        return Disposition::Requeue;
                    }
                }
                Ok(SendOnce::AlreadySent {
                    result_published,
                    result_message_id: stored_id,
                }) => {
                    tracing::info!("sent before: not sending it again");
                    return match &subject {
                        Some(subject) if !result_published => {
                            self.report_delivered(subject, stored_id.unwrap_or(result_message_id))
                                .await
                        }
                        _ => Disposition::Ack,
                    };
                }
                Ok(SendOnce::Sent { sent, recorded }) => {
                    match &sent {
                        Sent::File(path) => {
                            tracing::info!(attempt, file = %path.display(), "email written to a file")
                        }
                        Sent::Smtp { reply } => {
                            tracing::info!(attempt, smtp_reply = %reply, "email sent")
                        }
                    }
                    if !recorded {
                        self.record_sent(has_result, result_message_id).await;
                    }
                    return match &subject {
                        Some(subject) => self.report_delivered(subject, result_message_id).await,
                        None => Disposition::Ack,
                    };
                }
                Ok(SendOnce::Failed(failure)) => {
                    if failure.permanent || attempt >= max_attempts {
                        tracing::warn!(
                            attempt,
                            permanent = failure.permanent,
                            reason = %failure.reason,
                            "sending failed for good: dead-lettering it"
                        );
                        return self.give_up(subject.as_ref(), failure.reason).await;
                    }
                    let delay = self.worker.config.retry.delay(attempt);
                    tracing::warn!(
                        attempt,
                        reason = %failure.reason,
                        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "sending failed: will retry"
                    );
                    if !self.pause(attempt).await {
                        return Disposition::Requeue;
                    }
                }
            }
        }
    }

    /// Waits before retry `attempt + 1`; false when told to stop meanwhile.
    async fn pause(&mut self, attempt: u32) -> bool {
        let delay = self.worker.config.retry.delay(attempt);
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = self.stop.wait_for(|stop| *stop) => {
                tracing::info!("stopping: the command goes back to the queue");
                false
            }
        }
    }

    /// The email went out but the send transaction did not commit: record it
    /// on a fresh connection, or a redelivery would send it again.
    async fn record_sent(&mut self, has_result: bool, result_message_id: Uuid) {
        let max_attempts = self.worker.config.max_attempts;
        for attempt in 1..=max_attempts {
            match self
                .worker
                .store
                .record_sent(
                    &self.message_id,
                    &self.routing_key,
                    has_result,
                    result_message_id,
                )
                .await
            {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(
                        error = format!("{e:#}"),
                        attempt,
                        "could not record the sent email"
                    );
                    if attempt >= max_attempts || !self.pause(attempt).await {
                        break;
                    }
                }
            }
        }
        tracing::error!("the sent email is not recorded: a redelivery would send it again");
    }

    /// Publishes `invitation.delivered`, then notes it: Ack once published.
    async fn report_delivered(
        &mut self,
        subject: &Subject,
        result_message_id: Uuid,
    ) -> Disposition {
        let event = InvitationDelivered {
            invitation_id: subject.invitation_id.clone(),
            workspace_id: subject.workspace_id.clone(),
            mail_message_id: self.message_id.clone(),
        };
        let published = self
            .publish(
                results::INVITATION_DELIVERED,
                "wowchat.users.v1.InvitationDelivered",
                event.encode_to_vec(),
                result_message_id,
                &subject.workspace_id,
            )
            .await;
        if !published {
            return Disposition::Requeue;
        }
        if let Err(e) = self
            .worker
            .store
            .mark_result_published(&self.message_id)
            .await
        {
            // The event is out; at worst a redelivery publishes it again, same id.
            tracing::warn!(
                error = format!("{e:#}"),
                "could not note the result as published"
            );
        }
        Disposition::Ack
    }

    /// Dead-letters the command, after publishing `invitation.delivery_failed`
    /// for an invitation; if that cannot be published, requeues it instead.
    async fn give_up(&mut self, subject: Option<&Subject>, reason: String) -> Disposition {
        let Some(subject) = subject else {
            return Disposition::DeadLetter;
        };
        let event = InvitationDeliveryFailed {
            invitation_id: subject.invitation_id.clone(),
            workspace_id: subject.workspace_id.clone(),
            mail_message_id: self.message_id.clone(),
            reason,
        };
        let published = self
            .publish(
                results::INVITATION_DELIVERY_FAILED,
                "wowchat.users.v1.InvitationDeliveryFailed",
                event.encode_to_vec(),
                Uuid::now_v7(),
                &subject.workspace_id,
            )
            .await;
        if published {
            Disposition::DeadLetter
        } else {
            Disposition::Requeue
        }
    }

    /// Publishes with retries; true once confirmed.
    async fn publish(
        &mut self,
        routing_key: &'static str,
        message_type: &'static str,
        payload: Vec<u8>,
        message_id: Uuid,
        workspace_id: &str,
    ) -> bool {
        let max_attempts = self.worker.config.max_attempts;
        for attempt in 1..=max_attempts {
            let outgoing = Outgoing {
                routing_key,
                message_type,
                payload: payload.clone(),
                message_id,
                workspace_id,
                cause: self.headers,
            };
            match self.publisher.publish(outgoing).await {
                Ok(()) => {
                    tracing::info!(result = routing_key, result_message_id = %message_id, "result published");
                    return true;
                }
                Err(e) => {
                    tracing::warn!(
                        result = routing_key,
                        error = format!("{e:#}"),
                        attempt,
                        "result not published"
                    );
                    if !self.publisher.is_open()
                        || attempt >= max_attempts
                        || !self.pause(attempt).await
                    {
                        break;
                    }
                }
            }
        }
        tracing::warn!("result not published: the command goes back to the queue");
        false
    }
}

fn decode(routing_key: &str, body: &[u8]) -> Result<Command, String> {
    match routing_key {
        commands::SEND_INVITATION_EMAIL => SendInvitationEmail::decode(body)
            .map(|c| Command::Invitation(Box::new(c)))
            .map_err(|e| e.to_string()),
        commands::SEND_INVITATION_ACCEPTED_EMAIL => SendInvitationAcceptedEmail::decode(body)
            .map(|c| Command::Accepted(Box::new(c)))
            .map_err(|e| e.to_string()),
        _ => Err("unknown routing key".into()),
    }
}

async fn settle(delivery: &Delivery, disposition: Disposition) {
    let settled = match disposition {
        Disposition::Ack => delivery.ack(BasicAckOptions::default()).await,
        Disposition::DeadLetter => delivery.reject(BasicRejectOptions { requeue: false }).await,
        Disposition::Requeue => {
            delivery
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue: true,
                })
                .await
        }
    };
    if let Err(e) = settled {
        // The channel is gone; the broker redelivers the command, and the
        // dedupe table keeps that from sending it twice.
        tracing::warn!(error = %e, ?disposition, "could not settle the delivery");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_decoded_by_routing_key() {
        let body = SendInvitationEmail {
            token: "t".into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert!(matches!(
            decode(commands::SEND_INVITATION_EMAIL, &body),
            Ok(Command::Invitation(_))
        ));
        assert!(decode("mail.unknown", &body).is_err());
        assert!(decode(commands::SEND_INVITATION_EMAIL, &[0xff, 0xff, 0xff]).is_err());
    }
}
