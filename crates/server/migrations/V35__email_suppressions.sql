-- The suppression list (issue 26 §3): addresses no invitation email goes
-- to, from any workspace of the installation. One row per normalized
-- address: `bounced` (a 5xx reply to an invitation email; an administrator
-- may clear it) or `unsubscribed` (the recipient's one-click unsubscribe;
-- never cleared by an administrator). `workspace_id` and `invitation_id`
-- name the invitation whose email bounced or carried the link, for an
-- operator tracing it; they are never shown to other workspaces.
CREATE TABLE email_suppressions (
    email_normalized text PRIMARY KEY,
    cause            text NOT NULL CHECK (cause IN ('bounced', 'unsubscribed')),
    detail           text NOT NULL DEFAULT '',
    workspace_id     uuid,
    invitation_id    uuid,
    created_at       timestamptz NOT NULL DEFAULT now()
);
