//! The RabbitMQ contract between the service, its relay and the mailer:
//! exchange, queue and routing-key names. Every name starts with a prefix so
//! several installations (or tests) share one broker without meeting.

/// Routing keys of the commands, published to the commands exchange.
pub mod commands {
    /// Carries `SendInvitationEmail` (with the token) to the mailer only.
    pub const SEND_INVITATION_EMAIL: &str = "mail.invitation";
    /// Carries `SendInvitationAcceptedEmail` to the mailer only.
    pub const SEND_INVITATION_ACCEPTED_EMAIL: &str = "mail.invitation_accepted";
    /// Carries `SendJoinRequestConfirmationEmail` (with the token) to the mailer only.
    pub const SEND_JOIN_REQUEST_CONFIRMATION_EMAIL: &str = "mail.join_request_confirmation";
}

/// Routing keys of the events the mailer publishes.
pub mod results {
    pub const INVITATION_DELIVERED: &str = "invitation.delivered";
    pub const INVITATION_DELIVERY_FAILED: &str = "invitation.delivery_failed";
}

/// AMQP header naming the workspace a message belongs to.
pub const WORKSPACE_HEADER: &str = "workspace_id";
/// AMQP header carrying the id of the request that caused a message.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// AMQP header with the W3C trace context (trace id, parent span) of the
/// span that published the message; also the gRPC metadata key and HTTP
/// header a caller's trace arrives in.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// AMQP header with the W3C vendor trace state that goes with it.
pub const TRACESTATE_HEADER: &str = "tracestate";
/// AMQP header naming the protobuf message type of the body.
pub const MESSAGE_TYPE_HEADER: &str = "message_type";
/// Content type of every message body.
pub const CONTENT_TYPE: &str = "application/x-protobuf";

/// The names under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    pub fn new(prefix: impl Into<String>) -> Self {
        Topology {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Durable topic exchange of domain events; routing key = event type.
    pub fn events_exchange(&self) -> String {
        format!("{}.users.events", self.prefix)
    }

    /// Durable direct exchange of commands; only the mailer's queue is bound.
    pub fn commands_exchange(&self) -> String {
        format!("{}.users.commands", self.prefix)
    }

    /// Bounded queue bound to every event, so each event is routable (the
    /// relay publishes with the mandatory flag) and can be inspected.
    pub fn events_archive_queue(&self) -> String {
        format!("{}.users.events.archive", self.prefix)
    }

    /// The mailer's work queue.
    pub fn mailer_queue(&self) -> String {
        format!("{}.mailer", self.prefix)
    }

    /// Where the mailer's failed messages go.
    pub fn mailer_dead_letter_exchange(&self) -> String {
        format!("{}.mailer.dead", self.prefix)
    }

    pub fn mailer_dead_letter_queue(&self) -> String {
        format!("{}.mailer.dead", self.prefix)
    }

    /// The service's queue of delivery results from the mailer.
    pub fn delivery_results_queue(&self) -> String {
        format!("{}.users.delivery-results", self.prefix)
    }

    /// The exchange a routing key is published to: commands for `mail.*`,
    /// events for everything else.
    pub fn exchange_for(&self, routing_key: &str) -> String {
        if routing_key.starts_with("mail.") {
            self.commands_exchange()
        } else {
            self.events_exchange()
        }
    }
}
