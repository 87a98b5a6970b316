-- One row per mail command whose email went out, keyed by the command's AMQP
-- message id: a redelivered command finds its row and is not sent again.
CREATE TABLE mailer_sent_messages (
    message_id        text PRIMARY KEY,
    routing_key       text NOT NULL,
    sent_at           timestamptz NOT NULL DEFAULT now(),
    -- The result event (invitation.delivered) went out with a positive confirm.
    result_published  boolean NOT NULL DEFAULT false,
    -- The id that event is published under, kept so a republish after a
    -- redelivery carries the same id and consumers can drop the duplicate.
    result_message_id uuid
);

-- For pruning old rows by age.
CREATE INDEX mailer_sent_messages_by_time ON mailer_sent_messages (sent_at);
