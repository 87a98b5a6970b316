//! The mailer's metrics, resolved once when the mailer is built (after the
//! recorder is installed) and shared by every handler.

use metrics::{Counter, Gauge, Histogram};

pub struct MailerMetrics {
    /// Emails handed to SMTP (or written to a file) and accepted.
    pub sent: Counter,
    /// Emails given up on: a permanent refusal, or the attempts ran out.
    pub failed: Counter,
    /// Commands whose email had gone out before (a redelivery): not sent again.
    pub deduplicated: Counter,
    /// Each try at handing one email over, whatever its outcome.
    pub smtp_seconds: Histogram,
    /// Tries after the first, of sending and of recording the send.
    pub retries: Counter,
    /// Commands rejected into the dead-letter queue.
    pub dead_lettered: Counter,
    /// 1 while consuming the mail queue.
    pub consuming: Gauge,
}

impl MailerMetrics {
    pub fn new() -> Self {
        MailerMetrics {
            sent: metrics::counter!("wowchat_mailer_emails_sent_total"),
            failed: metrics::counter!("wowchat_mailer_emails_failed_total"),
            deduplicated: metrics::counter!("wowchat_mailer_emails_deduplicated_total"),
            smtp_seconds: metrics::histogram!("wowchat_mailer_smtp_seconds"),
            retries: metrics::counter!("wowchat_mailer_retries_total"),
            dead_lettered: metrics::counter!("wowchat_mailer_dead_lettered_total"),
            consuming: metrics::gauge!("wowchat_mailer_consuming"),
        }
    }
}
