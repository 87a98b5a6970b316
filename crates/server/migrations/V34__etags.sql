-- Etags (AIP-154) on invitations and on the workspace settings, as users
-- and roles have: every change a person makes bumps the version, and an
-- update sent with a stale etag is refused (ABORTED), so two administrators
-- never silently overwrite each other. A delivery result is no such change.
ALTER TABLE invitations ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE workspaces ADD COLUMN settings_version bigint NOT NULL DEFAULT 1;
