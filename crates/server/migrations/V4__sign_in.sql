-- When each user last signed in or made an authenticated call (kept to the
-- minute); NULL for never. ListUsers sorts and filters by it.
ALTER TABLE users ADD COLUMN last_active_at timestamptz;
CREATE INDEX users_by_last_activity
    ON users (workspace_id, last_active_at DESC NULLS LAST, id DESC);
