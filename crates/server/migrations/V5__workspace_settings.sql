-- Invitation settings of each workspace: a seat limit (active users plus
-- pending invitations; 0 for none) and the email domains invitees may have
-- (lowercase; empty for any).
ALTER TABLE workspaces
    ADD COLUMN seat_limit integer NOT NULL DEFAULT 0 CHECK (seat_limit >= 0),
    ADD COLUMN allowed_email_domains text[] NOT NULL DEFAULT '{}';
