//! One mail command, from delivery to ack: check its message id, decode it,
//! compose its email, send it at most once (dedupe in [`crate::store`]),
//! publish the result event, and settle the delivery (ack, dead-letter, or
//! requeue for a later try). Each step that can fail for a while (the send,
//! recording it, publishing the result) is retried the same way
//! ([`Job::retrying`]: `backon`, the configured backoff, cut short by a stop).
//!
//! Logs name message ids, invitation ids, routing keys, attempts and file
//! paths; never the token, the link, the bodies or any credential.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use backon::{ExponentialBuilder, Retryable};
use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions},
    types::FieldTable,
};
use lettre::Message;
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span, field};
use uuid::Uuid;
use wowchat_platform::{
    amqp::header,
    telemetry::{self, SpanKind, TraceContext},
};
use wowchat_users_api::{
    events::v1::{
        InvitationDelivered, InvitationDeliveryFailed, SendInvitationAcceptedEmail,
        SendInvitationEmail, SendJoinRequestConfirmationEmail,
    },
    topology::{REQUEST_ID_HEADER, TRACEPARENT_HEADER, TRACESTATE_HEADER, commands, results},
};

use crate::{
    amqp::{Outgoing, Publisher, header_text},
    config::Config,
    metrics::MailerMetrics,
    render::{RenderError, Renderer},
    store::{SendOnce, Store},
    transport::{SendFailure, Sent, Transport},
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
    JoinRequestConfirmation(Box<SendJoinRequestConfirmationEmail>),
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
    pub metrics: MailerMetrics,
}

/// One delivery being handled, with what its handling needs.
struct Job<'a> {
    worker: &'a Worker,
    publisher: &'a Publisher,
    stop: CancellationToken,
    message_id: String,
    routing_key: String,
    headers: Option<&'a FieldTable>,
    /// What the result event carries on of the command's trace.
    trace: Option<&'a TraceContext>,
}

impl Worker {
    /// Retries: the configured backoff, at most `max_attempts` tries in all.
    fn retry_policy(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.config.retry.base)
            .with_max_delay(self.config.retry.max)
            .with_max_times(
                usize::try_from(self.config.max_attempts.saturating_sub(1)).unwrap_or(usize::MAX),
            )
    }

    /// Handles one delivery to the end. `stop` is cancelled on shutdown or
    /// when the connection is lost: waits between retries end early then,
    /// and the delivery is requeued; a send already under way is finished.
    pub async fn handle(
        self: Arc<Self>,
        delivery: Delivery,
        publisher: Publisher,
        stop: CancellationToken,
    ) {
        let headers = delivery.properties.headers().as_ref();
        let message_id = message_id_of(&delivery);
        let span = mail_span(&delivery, message_id.as_deref(), headers);
        let trace = result_trace(&span, headers);
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
                        trace: trace.as_ref(),
                    }
                    .run(&delivery.data)
                    .await
                }
            };
            if disposition == Disposition::DeadLetter {
                self.metrics.dead_lettered.increment(1);
            }
            settle(&delivery, disposition).await;
        }
        .instrument(span)
        .await
    }
}

/// The delivery's message id, trimmed; none when missing or unusable.
fn message_id_of(delivery: &Delivery) -> Option<String> {
    delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str().trim().to_owned())
        // A control character (NUL above all) could never be stored, so
        // such a command would come back forever: treat it as missing.
        .filter(|id| !id.is_empty() && !id.chars().any(char::is_control))
}

/// The span of one delivery's handling, continuing the trace of the relay's
/// publish span: the change's trace goes on.
fn mail_span(delivery: &Delivery, message_id: Option<&str>, headers: Option<&FieldTable>) -> Span {
    let span = tracing::info_span!(
        "mail",
        routing_key = %delivery.routing_key,
        message_id = message_id.unwrap_or(""),
        request_id = header_text(headers, REQUEST_ID_HEADER).unwrap_or_default(),
        invitation_id = field::Empty,
        redelivered = delivery.redelivered,
        "otel.name" = field::Empty,
        "otel.kind" = field::Empty,
    );
    telemetry::continue_trace(
        &span,
        header(headers, TRACEPARENT_HEADER),
        header(headers, TRACESTATE_HEADER),
    );
    if telemetry::enabled() {
        telemetry::describe_span(
            &span,
            SpanKind::Consumer,
            &format!("process {}", delivery.routing_key),
        );
    }
    span
}

/// The trace a result event continues: `span`'s; without traces here, the
/// command's context passes on as it came.
fn result_trace(span: &Span, headers: Option<&FieldTable>) -> Option<TraceContext> {
    telemetry::trace_context(span).or_else(|| {
        Some(TraceContext {
            traceparent: header(headers, TRACEPARENT_HEADER)?.to_owned(),
            tracestate: header(headers, TRACESTATE_HEADER).map(str::to_owned),
        })
    })
}

/// How the sending step ended.
enum Sending {
    /// The email went out, now or before. `unreported` is the id to publish
    /// its result under, while that is still to do.
    Done { unreported: Option<Uuid> },
    /// It will not go out: the reason, for the result event, and whether the
    /// mail server refused it for good (a hard bounce).
    Undeliverable { reason: String, hard_bounce: bool },
    /// Not now (the database, or a stop): the command goes back to the queue.
    Later,
}

/// Why a step retried by [`Job::retrying`] ended without succeeding.
enum Halt<E> {
    /// Its last failure: one not worth retrying, or the attempts ran out.
    Failed(E),
    /// Told to stop while waiting to try again.
    Stopped,
}

impl Job<'_> {
    /// The steps: decode, compose, send once, report, in that order.
    async fn run(self, body: &[u8]) -> Disposition {
        let command = match decode(&self.routing_key, body) {
            Ok(command) => command,
            Err(why) => {
                tracing::error!(%why, "undecodable mail command: dead-lettering it");
                return Disposition::DeadLetter;
            }
        };
        let subject = subject_of(&command);
        let email = match self.compose(&command) {
            Ok(email) => email,
            Err(e) => {
                tracing::error!(error = %e, "no email can be made of this command");
                return self.give_up(subject.as_ref(), e.to_string(), false).await;
            }
        };
        match self.send(&email, subject.is_some()).await {
            Sending::Later => Disposition::Requeue,
            Sending::Undeliverable {
                reason,
                hard_bounce,
            } => self.give_up(subject.as_ref(), reason, hard_bounce).await,
            Sending::Done { unreported } => match (&subject, unreported) {
                (Some(subject), Some(result_message_id)) => {
                    self.report_delivered(subject, result_message_id).await
                }
                _ => Disposition::Ack,
            },
        }
    }

    fn compose(&self, command: &Command) -> Result<Message, RenderError> {
        let renderer = &self.worker.renderer;
        match command {
            Command::Invitation(command) => renderer.invitation_email(command, &self.message_id),
            Command::Accepted(command) => {
                renderer.invitation_accepted_email(command, &self.message_id)
            }
            Command::JoinRequestConfirmation(command) => {
                renderer.join_request_confirmation_email(command, &self.message_id)
            }
        }
    }

    /// Sends the email unless it was sent before, retrying database errors
    /// and transient SMTP failures. `has_result`: an invitation email, whose
    /// result is reported.
    async fn send(&self, email: &Message, has_result: bool) -> Sending {
        let result_message_id = Uuid::now_v7();
        let sent = self
            .retrying(
                |attempt| async move {
                    let done = self
                        .try_send(email, has_result, result_message_id, attempt)
                        .await?;
                    Ok((done, attempt))
                },
                SendError::is_transient,
                |error, delay| self.note_send_retry(error, delay),
            )
            .await;
        match sent {
            Ok((done, attempt)) => {
                self.sent(done, attempt, has_result, result_message_id)
                    .await
            }
            Err(Halt::Failed(SendError::Refused(failure))) => {
                tracing::warn!(
                    permanent = failure.permanent,
                    hard_bounce = failure.hard_bounce,
                    reason = %failure.reason,
                    "sending failed for good: dead-lettering it"
                );
                Sending::Undeliverable {
                    reason: failure.reason,
                    hard_bounce: failure.hard_bounce,
                }
            }
            Err(Halt::Failed(SendError::Database) | Halt::Stopped) => Sending::Later,
        }
    }

    /// One try at sending (`attempt`, from 1): hands the email over unless
    /// its message id was sent before, in the transaction that records it
    /// ([`Store::send_once`]). Says what happened; whether to try again is
    /// [`Job::send`]'s to decide.
    async fn try_send(
        &self,
        email: &Message,
        has_result: bool,
        result_message_id: Uuid,
        attempt: u32,
    ) -> Result<SendOnce<Sent>, SendError> {
        let transport = &self.worker.transport;
        let metrics = &self.worker.metrics;
        let outcome = self
            .worker
            .store
            .send_once(
                &self.message_id,
                &self.routing_key,
                has_result,
                result_message_id,
                || async {
                    let started = std::time::Instant::now();
                    let sent = transport
                        .send(email.clone())
                        .instrument(sending_span(attempt))
                        .await;
                    metrics.smtp_seconds.record(started.elapsed().as_secs_f64());
                    sent
                },
            )
            .await;
        match outcome {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(failure)) => Err(SendError::Refused(failure)),
            Err(e) => {
                // Nothing was sent; the database is the problem, not the email.
                tracing::warn!(
                    error = format!("{e:#}"),
                    attempt,
                    "could not check whether it was sent"
                );
                Err(SendError::Database)
            }
        }
    }

    /// Counts a retry of the send; a refusal's reason is logged with it.
    fn note_send_retry(&self, error: &SendError, delay: Duration) {
        self.worker.metrics.retries.increment(1);
        if let SendError::Refused(failure) = error {
            tracing::warn!(
                reason = %failure.reason,
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "sending failed: will retry"
            );
        }
    }

    /// The email went out, now (on try `attempt`) or before: counts and
    /// logs it, records a send whose commit failed, and says under which id
    /// its result is still to be published.
    async fn sent(
        &self,
        done: SendOnce<Sent>,
        attempt: u32,
        has_result: bool,
        result_message_id: Uuid,
    ) -> Sending {
        let metrics = &self.worker.metrics;
        match done {
            SendOnce::AlreadySent {
                result_published,
                result_message_id: stored_id,
            } => {
                tracing::info!("sent before: not sending it again");
                metrics.deduplicated.increment(1);
                Sending::Done {
                    unreported: (!result_published).then(|| stored_id.unwrap_or(result_message_id)),
                }
            }
            SendOnce::Sent { sent, recorded } => {
                metrics.sent.increment(1);
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
                Sending::Done {
                    unreported: has_result.then_some(result_message_id),
                }
            }
        }
    }

    /// The email went out but the send transaction did not commit: record it
    /// on a fresh connection, or a redelivery would send it again.
    async fn record_sent(&self, has_result: bool, result_message_id: Uuid) {
        let store = &self.worker.store;
        let recorded = self
            .retrying(
                |attempt| async move {
                    store
                        .record_sent(
                            &self.message_id,
                            &self.routing_key,
                            has_result,
                            result_message_id,
                        )
                        .await
                        .map_err(|e| {
                            tracing::error!(
                                error = format!("{e:#}"),
                                attempt,
                                "could not record the sent email"
                            );
                        })
                },
                |_| true,
                |_, _| self.worker.metrics.retries.increment(1),
            )
            .await;
        if recorded.is_err() {
            tracing::error!("the sent email is not recorded: a redelivery would send it again");
        }
    }

    /// Publishes `invitation.delivered`, then notes it: Ack once published.
    async fn report_delivered(&self, subject: &Subject, result_message_id: Uuid) -> Disposition {
        let event = InvitationDelivered {
            invitation_id: subject.invitation_id.clone(),
            workspace_id: subject.workspace_id.clone(),
            mail_message_id: self.message_id.clone(),
        };
        let published = self
            .publish(
                results::INVITATION_DELIVERED,
                "wowchat.users.events.v1.InvitationDelivered",
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
    /// for an invitation (`hard_bounce`: refused for good by the mail
    /// server, so the service suppresses the address); if that cannot be
    /// published, requeues it instead.
    async fn give_up(
        &self,
        subject: Option<&Subject>,
        reason: String,
        hard_bounce: bool,
    ) -> Disposition {
        self.worker.metrics.failed.increment(1);
        let Some(subject) = subject else {
            return Disposition::DeadLetter;
        };
        let event = InvitationDeliveryFailed {
            invitation_id: subject.invitation_id.clone(),
            workspace_id: subject.workspace_id.clone(),
            mail_message_id: self.message_id.clone(),
            reason,
            hard_bounce,
        };
        let published = self
            .publish(
                results::INVITATION_DELIVERY_FAILED,
                "wowchat.users.events.v1.InvitationDeliveryFailed",
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

    /// Publishes with retries while the channel is open; true once confirmed.
    async fn publish(
        &self,
        routing_key: &'static str,
        message_type: &'static str,
        payload: Vec<u8>,
        message_id: Uuid,
        workspace_id: &str,
    ) -> bool {
        let publisher = self.publisher;
        let payload = &payload;
        let published = self
            .retrying(
                |attempt| async move {
                    let outgoing = Outgoing {
                        routing_key,
                        message_type,
                        payload: payload.clone(),
                        message_id,
                        workspace_id,
                        cause: self.headers,
                        trace: self.trace,
                    };
                    publisher.publish(outgoing).await.map_err(|e| {
                        tracing::warn!(
                            result = routing_key,
                            error = format!("{e:#}"),
                            attempt,
                            "result not published"
                        );
                    })
                },
                // Once the channel is closed, retrying is useless.
                |_| publisher.is_open(),
                |_, _| {},
            )
            .await;
        match published {
            Ok(()) => {
                tracing::info!(result = routing_key, result_message_id = %message_id, "result published");
                true
            }
            Err(_) => {
                tracing::warn!("result not published: the command goes back to the queue");
                false
            }
        }
    }

    /// Runs `step` (given its attempt number, from 1) until it succeeds, it
    /// fails in a way `retryable` rejects, or it was tried `max_attempts`
    /// times, waiting with the configured backoff in between; `notify` hears
    /// of each retry and its delay. A stop during a wait ends the waiting and
    /// the step ([`Halt::Stopped`]); an attempt under way is finished.
    async fn retrying<T, E, Fut>(
        &self,
        mut step: impl FnMut(u32) -> Fut,
        retryable: impl Fn(&E) -> bool,
        mut notify: impl FnMut(&E, Duration),
    ) -> Result<T, Halt<E>>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let stop = self.stop.clone();
        let mut attempt = 0;
        let attempts = (|| {
            attempt += 1;
            // Only a wait is cut short: the first attempt always runs.
            let stopped = attempt > 1 && stop.is_cancelled();
            let run = step(attempt);
            async move {
                if stopped {
                    tracing::info!("stopping: the command goes back to the queue");
                    return Err(Halt::Stopped);
                }
                run.await.map_err(Halt::Failed)
            }
        })
        .retry(self.worker.retry_policy())
        .sleep(until_stopped(self.stop.clone()))
        .when(|halt| matches!(halt, Halt::Failed(error) if retryable(error)))
        .notify(|halt, delay| {
            if let Halt::Failed(error) = halt {
                notify(error, delay);
            }
        });
        attempts.await
    }
}

/// What went wrong with one try at sending.
enum SendError {
    /// Whether it was sent could not be checked; nothing was sent.
    Database,
    /// The transport refused it.
    Refused(SendFailure),
}

impl SendError {
    /// Worth another try: the database, or a refusal that may pass.
    fn is_transient(&self) -> bool {
        match self {
            SendError::Database => true,
            SendError::Refused(failure) => !failure.permanent,
        }
    }
}

/// The span of one try at handing the email over (to the SMTP server, or
/// to a file); none while traces are off.
fn sending_span(attempt: u32) -> tracing::Span {
    if !telemetry::enabled() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "send email",
        attempt,
        "otel.name" = field::Empty,
        "otel.kind" = field::Empty,
    );
    telemetry::describe_span(&span, SpanKind::Client, "send email");
    span
}

/// Sleeps for the delay asked, or until `stop` is cancelled.
fn until_stopped(
    stop: CancellationToken,
) -> impl Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + 'static {
    move |delay| {
        let stop = stop.clone();
        Box::pin(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.cancelled() => {}
            }
        })
    }
}

/// The invitation a result event is about, if the command reports one (only
/// invitation emails do); the span learns which invitation it is either way.
fn subject_of(command: &Command) -> Option<Subject> {
    let invitation = match command {
        Command::Invitation(command) => command.invitation.as_ref(),
        Command::Accepted(command) => command.invitation.as_ref(),
        // A join request's confirmation reports no result.
        Command::JoinRequestConfirmation(_) => None,
    }?;
    tracing::Span::current().record("invitation_id", invitation.id.as_str());
    match command {
        Command::Invitation(_) => Some(Subject {
            invitation_id: invitation.id.clone(),
            workspace_id: invitation.workspace_id.clone(),
        }),
        Command::Accepted(_) | Command::JoinRequestConfirmation(_) => None,
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
        commands::SEND_JOIN_REQUEST_CONFIRMATION_EMAIL => {
            SendJoinRequestConfirmationEmail::decode(body)
                .map(|c| Command::JoinRequestConfirmation(Box::new(c)))
                .map_err(|e| e.to_string())
        }
        _ => Err("unknown routing key".into()),
    }
}

/// Longest wait for an ack, reject or nack to go out (the broker answers
/// none of them; the wait is lapin's writing it). On a connection that died
/// under it lapin may never finish one, and the session would wait for
/// that handler forever; the broker redelivers whatever this consumer left
/// unsettled once the connection is gone.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

async fn settle(delivery: &Delivery, disposition: Disposition) {
    let settling = async {
        match disposition {
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
        }
    };
    let error = match tokio::time::timeout(SETTLE_TIMEOUT, settling).await {
        Ok(Ok(_)) => return,
        Ok(Err(error)) => error.to_string(),
        Err(_) => "the broker did not answer".to_owned(),
    };
    // The channel is gone; the broker redelivers the command, and the
    // dedupe table keeps that from sending it twice.
    tracing::warn!(error, ?disposition, "could not settle the delivery");
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

    #[test]
    fn a_send_is_tried_again_after_a_database_error_or_a_transient_refusal_only() {
        let refused = |permanent| {
            SendError::Refused(SendFailure {
                permanent,
                hard_bounce: false,
                reason: "451 try later".into(),
            })
        };
        assert!(SendError::Database.is_transient());
        assert!(refused(false).is_transient());
        assert!(!refused(true).is_transient());
    }
}
