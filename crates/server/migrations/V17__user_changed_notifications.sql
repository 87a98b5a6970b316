-- Replicas also cache whole user records for GetUser (auth::cache), so a
-- change to any of a user's columns now tells them, not only a change to what
-- a caller is built from. All but last_active_at: every call may bump it
-- (once a minute a user, store::users::touch_last_active), and a NOTIFY holds
-- Postgres's notify lock through its commit's flush. The replica that writes
-- it drops its own copy; another's GetUser may show it older by up to the
-- cache's max age, on top of the minute the throttle allows.
DROP TRIGGER users_caller_changed ON users;

CREATE TRIGGER users_changed
    AFTER UPDATE ON users
    FOR EACH ROW
    WHEN (to_jsonb(OLD) - 'last_active_at' IS DISTINCT FROM to_jsonb(NEW) - 'last_active_at')
    EXECUTE FUNCTION notify_caller_changed();
