-- Every replica caches who its callers are (auth::cache). These triggers tell
-- them, through NOTIFY caller_changed, the moment what authentication reads
-- changes; the notification is sent when the transaction commits. Payload:
-- '<workspace id> <user id>' for one user, '<workspace id>' for all of a
-- workspace's users (a custom role they may hold changed).

CREATE FUNCTION notify_caller_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    workspace uuid;
    member    uuid;
BEGIN
    IF TG_OP = 'INSERT' THEN
        workspace := NEW.workspace_id;
    ELSE
        workspace := OLD.workspace_id;
    END IF;
    IF TG_TABLE_NAME = 'users' THEN
        member := OLD.id;
        PERFORM pg_notify('caller_changed', workspace || ' ' || member);
    ELSE
        PERFORM pg_notify('caller_changed', workspace::text);
    END IF;
    RETURN NULL;
END
$$;

-- What a caller is built from. Not last_active_at: every call may bump it.
CREATE TRIGGER users_caller_changed
    AFTER UPDATE OF status, role, email, display_name ON users
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.role IS DISTINCT FROM NEW.role
          OR OLD.email IS DISTINCT FROM NEW.email
          OR OLD.display_name IS DISTINCT FROM NEW.display_name)
    EXECUTE FUNCTION notify_caller_changed();

CREATE TRIGGER users_caller_deleted
    AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION notify_caller_changed();

-- A custom role's permissions are part of every holder's caller. A role
-- created under a name some user still holds starts granting at once too.
CREATE TRIGGER roles_permissions_changed
    AFTER UPDATE OF permissions ON roles
    FOR EACH ROW
    WHEN (OLD.permissions IS DISTINCT FROM NEW.permissions)
    EXECUTE FUNCTION notify_caller_changed();

CREATE TRIGGER roles_created_or_deleted
    AFTER INSERT OR DELETE ON roles
    FOR EACH ROW EXECUTE FUNCTION notify_caller_changed();
