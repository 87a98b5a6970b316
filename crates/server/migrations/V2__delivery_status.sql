-- Where the email of each invitation's latest send is, as reported by the mailer.
ALTER TABLE invitations
    ADD COLUMN delivery_status text NOT NULL DEFAULT 'QUEUED'
        CHECK (delivery_status IN ('QUEUED', 'SENT', 'FAILED')),
    ADD COLUMN delivery_failure_reason text,
    -- The outbox id of the latest mail command: results of older sends are ignored.
    ADD COLUMN mail_message_id uuid;
