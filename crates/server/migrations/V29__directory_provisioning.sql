-- SCIM provisioning: an identity provider (Okta, Entra ID) keeps a
-- workspace's members in sync with a directory token.

-- The bearer tokens of a workspace's directory. The secret is shown once;
-- only its SHA-256 is kept. A token acts with the authority of the owner
-- who minted it, as that owner stands now (see auth::caller).
CREATE TABLE directory_tokens (
    workspace_id uuid NOT NULL REFERENCES workspaces (id),
    id           uuid NOT NULL,
    display_name text NOT NULL,
    secret_hash  bytea NOT NULL,
    created_by   uuid NOT NULL,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, created_by) REFERENCES users (workspace_id, id)
);
-- The secret is the credential, so it is looked up across workspaces.
CREATE UNIQUE INDEX directory_tokens_secret ON directory_tokens (secret_hash);

-- A member the directory created or took over ('LINKED'), or one it let go
-- of by a SCIM DELETE ('DETACHED': deactivated, and gone from SCIM while it
-- stays in the workspace's history). NULL: never touched by a directory.
-- The userName and externalId are the directory's own keys; the profile is
-- the name, displayName and emails exactly as the directory last sent them,
-- so what it reads back is what it wrote.
ALTER TABLE users
    ADD COLUMN directory_state text CHECK (directory_state IN ('LINKED', 'DETACHED')),
    ADD COLUMN directory_user_name text,
    ADD COLUMN directory_external_id text,
    ADD COLUMN directory_profile jsonb;
-- userName is unique per workspace ignoring case; a member the directory
-- never touched answers to its email.
CREATE UNIQUE INDEX users_directory_user_name
    ON users (workspace_id, lower(directory_user_name))
    WHERE directory_user_name IS NOT NULL;
CREATE INDEX users_directory_login
    ON users (workspace_id, lower(coalesce(directory_user_name, email)));
CREATE UNIQUE INDEX users_directory_external_id
    ON users (workspace_id, directory_external_id)
    WHERE directory_external_id IS NOT NULL;

-- What the directory did: activity entries name its token as the actor.
ALTER TABLE activity ADD COLUMN actor_directory_token_id uuid;

-- The role a member the directory creates gets when no group says otherwise.
ALTER TABLE workspaces
    ADD COLUMN directory_default_role text NOT NULL DEFAULT 'agent';
