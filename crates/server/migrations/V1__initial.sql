-- Every table is keyed by workspace first, so it can be distributed by workspace.

CREATE TABLE workspaces (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    workspace_id        uuid NOT NULL REFERENCES workspaces (id),
    id                  uuid NOT NULL,
    email               text NOT NULL,
    email_normalized    text NOT NULL,
    display_name        text NOT NULL,
    role                text NOT NULL,
    reporting_to        uuid,
    status              text NOT NULL CHECK (status IN ('ACTIVE', 'DEACTIVATED')),
    deactivation_reason text,
    password_hash       text NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    version             bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, reporting_to) REFERENCES users (workspace_id, id),
    CHECK (reporting_to IS DISTINCT FROM id)
);
CREATE UNIQUE INDEX users_email_per_workspace ON users (workspace_id, email_normalized);
CREATE INDEX users_by_creation ON users (workspace_id, created_at, id);
CREATE INDEX users_by_manager ON users (workspace_id, reporting_to) WHERE reporting_to IS NOT NULL;
CREATE INDEX users_owners ON users (workspace_id) WHERE role = 'owner' AND status = 'ACTIVE';

CREATE TABLE invitations (
    workspace_id     uuid NOT NULL REFERENCES workspaces (id),
    id               uuid NOT NULL,
    email            text NOT NULL,
    email_normalized text NOT NULL,
    role             text NOT NULL,
    reporting_to     uuid,
    inviter_id       uuid NOT NULL,
    message          text NOT NULL DEFAULT '',
    status           text NOT NULL CHECK (status IN ('PENDING', 'ACCEPTED', 'REVOKED', 'EXPIRED')),
    token_hash       bytea NOT NULL,
    expires_at       timestamptz NOT NULL,
    last_sent_at     timestamptz NOT NULL,
    resend_count     integer NOT NULL DEFAULT 0,
    accepted_user_id uuid,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, inviter_id) REFERENCES users (workspace_id, id),
    FOREIGN KEY (workspace_id, reporting_to) REFERENCES users (workspace_id, id),
    FOREIGN KEY (workspace_id, accepted_user_id) REFERENCES users (workspace_id, id)
);
-- The token is the credential of AcceptInvitation, so it is looked up across workspaces.
CREATE UNIQUE INDEX invitations_token ON invitations (token_hash);
-- At most one pending invitation per workspace and person.
CREATE UNIQUE INDEX invitations_one_pending ON invitations (workspace_id, email_normalized)
    WHERE status = 'PENDING';
CREATE INDEX invitations_by_creation ON invitations (workspace_id, created_at DESC, id DESC);

CREATE TABLE activity (
    workspace_id         uuid NOT NULL REFERENCES workspaces (id),
    id                   uuid NOT NULL,
    occurred_at          timestamptz NOT NULL,
    actor_id             uuid,
    action               text NOT NULL,
    target_user_id       uuid,
    target_invitation_id uuid,
    changes              jsonb NOT NULL DEFAULT '[]',
    request_id           text NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX activity_by_time ON activity (workspace_id, occurred_at DESC, id DESC);
CREATE INDEX activity_by_target ON activity (workspace_id, target_user_id, occurred_at DESC);
CREATE INDEX activity_by_actor ON activity (workspace_id, actor_id, occurred_at DESC);

-- Transactional outbox: written with the change, published by the relay.
CREATE TABLE outbox (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL,
    routing_key   text NOT NULL,
    message_type  text NOT NULL,
    payload       bytea NOT NULL,
    request_id    text NOT NULL,
    created_at    timestamptz NOT NULL,
    published_at  timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_unpublished ON outbox (next_attempt_at, created_at) WHERE published_at IS NULL;

-- Results of mutating calls made with a request_id, so a retry returns the first result.
CREATE TABLE idempotency_keys (
    workspace_id uuid NOT NULL,
    actor_id     uuid NOT NULL,
    operation    text NOT NULL,
    request_id   text NOT NULL,
    fingerprint  bytea NOT NULL,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, actor_id, operation, request_id)
);
