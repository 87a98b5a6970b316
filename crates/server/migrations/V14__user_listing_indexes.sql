-- ListUsers at 100k users in a workspace: every filtered page is a short
-- index range, not a scan and sort of the workspace.

-- Substring search (`query`) over email and display name. pg_trgm ships with
-- Postgres (contrib) and is a trusted extension, so a database owner may
-- create it on managed Postgres too.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_email_trigrams ON users USING gin (email_normalized gin_trgm_ops);
CREATE INDEX users_display_name_trigrams ON users USING gin (lower(display_name) gin_trgm_ops);

-- A role's members in creation order, so a rare role's page does not walk the
-- whole workspace. Its prefix answers "is this role still held?" as
-- users_by_role did.
CREATE INDEX users_by_role_and_creation ON users (workspace_id, role, created_at, id);
DROP INDEX users_by_role;
