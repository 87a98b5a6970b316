-- Ways in besides a personal invitation: invite links and join requests.
-- Both end in an ordinary invitation (AcceptInvitation stays the one way an
-- account is created).

-- A link anyone holding its secret may use to ask to join. The secret is
-- shown once; only its SHA-256 is kept, and rotating replaces it. Its
-- invitations are sent in its creator's name, so the link works only while
-- the creator could send them (checked at each redemption).
CREATE TABLE invite_links (
    workspace_id      uuid NOT NULL REFERENCES workspaces (id),
    id                uuid NOT NULL,
    secret_hash       bytea NOT NULL,
    role              text NOT NULL,
    reporting_to      uuid,
    creator_id        uuid NOT NULL,
    requires_approval boolean NOT NULL,
    max_uses          integer NOT NULL CHECK (max_uses BETWEEN 1 AND 1000),
    -- Taken by an atomic UPDATE ... WHERE use_count < max_uses, so concurrent
    -- redemptions never make more than max_uses invitations.
    use_count         integer NOT NULL DEFAULT 0 CHECK (use_count BETWEEN 0 AND max_uses),
    expires_at        timestamptz NOT NULL,
    revoked_at        timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, creator_id) REFERENCES users (workspace_id, id),
    FOREIGN KEY (workspace_id, reporting_to) REFERENCES users (workspace_id, id)
);
-- The secret is the credential, so it is looked up across workspaces.
CREATE UNIQUE INDEX invite_links_secret ON invite_links (secret_hash);
CREATE INDEX invite_links_by_creation ON invite_links (workspace_id, created_at DESC, id DESC);

-- The link an invitation came through, if any.
ALTER TABLE invitations ADD COLUMN invite_link_id uuid;

-- A person's request to join. 'UNCONFIRMED' until its email's token comes
-- back: nobody sees it before. An open request (unconfirmed or pending)
-- past its expiry reads as 'EXPIRED' (store::join_requests).
CREATE TABLE join_requests (
    workspace_id       uuid NOT NULL REFERENCES workspaces (id),
    id                 uuid NOT NULL,
    email              text NOT NULL,
    email_normalized   text NOT NULL,
    display_name       text NOT NULL,
    message            text NOT NULL DEFAULT '',
    status             text NOT NULL
        CHECK (status IN ('UNCONFIRMED', 'PENDING', 'APPROVED', 'DENIED', 'EXPIRED')),
    invite_link_id     uuid,
    proposed_role      text,
    confirm_token_hash bytea,
    created_at         timestamptz NOT NULL,
    confirmed_at       timestamptz,
    expires_at         timestamptz NOT NULL,
    decided_at         timestamptz,
    decided_by         uuid,
    denial_reason      text NOT NULL DEFAULT '',
    invitation_id      uuid,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, invite_link_id) REFERENCES invite_links (workspace_id, id),
    FOREIGN KEY (workspace_id, decided_by) REFERENCES users (workspace_id, id)
);
-- One open request per email and workspace.
CREATE UNIQUE INDEX join_requests_one_open ON join_requests (workspace_id, email_normalized)
    WHERE status IN ('UNCONFIRMED', 'PENDING');
CREATE UNIQUE INDEX join_requests_token ON join_requests (confirm_token_hash)
    WHERE confirm_token_hash IS NOT NULL;
CREATE INDEX join_requests_by_creation ON join_requests (workspace_id, created_at DESC, id DESC);
-- The cool-down after a denial looks up the latest denial of an email.
CREATE INDEX join_requests_denied ON join_requests (workspace_id, email_normalized, decided_at DESC)
    WHERE status = 'DENIED';

-- Whether anyone may ask to join directly (CreateJoinRequest); requests
-- through a link that requires approval do not need it.
ALTER TABLE workspaces ADD COLUMN accept_join_requests boolean NOT NULL DEFAULT false;
