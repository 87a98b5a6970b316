-- Workspace-defined roles: a name and a set of permissions from the catalog.
-- Built-in roles (owner, admin, supervisor, agent) live in code, not here.
CREATE TABLE roles (
    workspace_id uuid NOT NULL REFERENCES workspaces (id),
    name         text NOT NULL,
    -- Catalog names, e.g. {users.read,reports.read}; unknown names grant nothing.
    permissions  text[] NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    version      bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, name)
);

-- "Is this role still held?" (DeleteRole) answers from an index, not a scan.
CREATE INDEX users_by_role ON users (workspace_id, role);
CREATE INDEX invitations_pending_by_role ON invitations (workspace_id, role)
    WHERE status = 'PENDING';
