-- SCIM groups: a directory's groups of members. A group whose name is a
-- role's (built-in or the workspace's own, ignoring case) gives its members
-- that role; a member of no such group keeps the role it has, until it
-- leaves one (then the workspace's default directory role).
CREATE TABLE directory_groups (
    workspace_id uuid NOT NULL REFERENCES workspaces (id),
    id           uuid NOT NULL,
    display_name text NOT NULL,
    external_id  text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    version      bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX directory_groups_name ON directory_groups (workspace_id, lower(display_name));
CREATE UNIQUE INDEX directory_groups_external_id ON directory_groups (workspace_id, external_id)
    WHERE external_id IS NOT NULL;

CREATE TABLE directory_group_members (
    workspace_id uuid NOT NULL,
    group_id     uuid NOT NULL,
    user_id      uuid NOT NULL,
    -- Members read back in the order they were added.
    added_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (workspace_id, group_id, user_id),
    FOREIGN KEY (workspace_id, group_id) REFERENCES directory_groups (workspace_id, id) ON DELETE CASCADE,
    FOREIGN KEY (workspace_id, user_id) REFERENCES users (workspace_id, id)
);
CREATE INDEX directory_group_members_by_user ON directory_group_members (workspace_id, user_id);
