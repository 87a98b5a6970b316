-- Access that ends by itself (seasonal or contract agents, guests). An
-- invitation may carry the access expiry its user gets on accepting; a user's
-- calls are refused from that moment on every replica (the caller cache holds
-- the time and compares it at each call), and the expiry sweep later
-- deactivates them. NULL: access never ends.
ALTER TABLE users ADD COLUMN access_expires_at timestamptz;
ALTER TABLE invitations ADD COLUMN access_expires_at timestamptz;

-- The sweep's and ListUsers' "expires before" lookups touch only the users
-- who have an expiry.
CREATE INDEX users_access_expiry ON users (workspace_id, access_expires_at)
    WHERE access_expires_at IS NOT NULL;
CREATE INDEX users_access_expiry_due ON users (access_expires_at)
    WHERE access_expires_at IS NOT NULL AND status = 'ACTIVE';
