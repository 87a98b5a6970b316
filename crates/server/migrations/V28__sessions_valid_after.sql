-- Ending sessions (SignOut, ManageUser end_sessions): access tokens issued
-- before this second are refused. Whole seconds, as a token's `iat` is:
-- a token issued in the second sessions ended stays valid, so signing in
-- again at once works. NULL: no session was ever ended. A change tells
-- every replica's caller cache through the V17 trigger (any column but
-- last_active_at), before the call that made it answers.
ALTER TABLE users ADD COLUMN sessions_valid_after timestamptz;
