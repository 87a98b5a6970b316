-- A user's last-active time moves off the user's row into a narrow table of
-- its own. Every sign-in, and every caller's first call of a minute, wrote
-- it; on `users` that is a new version of a wide row and an entry in each
-- of its indexes (its trigram index too: some 30 entries a user), because
-- `users_by_last_activity` made the column indexed and so the update never
-- HOT. Here it is a 56-byte row with two small indexes. The API is the
-- same: reads take the time from here (store::users::COLUMNS).
--
-- Every user has its row from the start (the trigger), a never-active user
-- with a NULL time, so the last-activity order is one walk of this table's
-- index, never-active users last.
--
-- The copy of every user's time runs under the trigger's lock, which holds
-- writes to `users` (reads go on) until this migration commits: ~4 s at a
-- million users on this machine. `users.last_active_at` stays, unwritten,
-- so that the previous version still runs on this schema after a rollback
-- (its last-active order then sorts: the index is gone); a later release
-- drops it.
CREATE TABLE user_activity (
    workspace_id uuid NOT NULL,
    user_id uuid NOT NULL,
    last_active_at timestamptz,
    PRIMARY KEY (workspace_id, user_id),
    FOREIGN KEY (workspace_id, user_id) REFERENCES users (workspace_id, id) ON DELETE CASCADE
);

CREATE FUNCTION user_activity_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_activity (workspace_id, user_id) VALUES (NEW.workspace_id, NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_activity_row
    AFTER INSERT ON users
    FOR EACH ROW
    EXECUTE FUNCTION user_activity_row();

INSERT INTO user_activity (workspace_id, user_id, last_active_at)
SELECT workspace_id, id, last_active_at FROM users;

CREATE INDEX user_activity_by_time
    ON user_activity (workspace_id, last_active_at DESC NULLS LAST, user_id DESC);

DROP INDEX users_by_last_activity;

ANALYZE user_activity;
