-- Verified domains: a workspace proves it owns a mail domain by publishing a
-- DNS TXT record, and then lets anyone with an address there join (an
-- invitation) or ask to (a join request), by the domain's enrollment mode.
-- A pending claim past its expiry reads as EXPIRED (store::domains); a
-- verified domain whose record disappears at a re-check is LAPSED.
CREATE TABLE workspace_domains (
    workspace_id      uuid NOT NULL REFERENCES workspaces (id),
    id                uuid NOT NULL,
    domain            text NOT NULL,
    status            text NOT NULL CHECK (status IN ('PENDING', 'VERIFIED', 'LAPSED')),
    -- Published in DNS, so not a secret; random, so no one else's record
    -- proves this claim.
    verification_code text NOT NULL,
    enrollment_mode   text NOT NULL DEFAULT 'MANUAL'
        CHECK (enrollment_mode IN ('MANUAL', 'INVITE', 'SUGGEST')),
    default_role      text NOT NULL DEFAULT 'agent',
    created_by        uuid NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    verified_at       timestamptz,
    checked_at        timestamptz,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, created_by) REFERENCES users (workspace_id, id)
);
-- A workspace claims a domain once.
CREATE UNIQUE INDEX workspace_domains_one_claim ON workspace_domains (workspace_id, domain);
-- A verified domain belongs to one workspace at most; the public join looks
-- it up by name.
CREATE UNIQUE INDEX workspace_domains_verified ON workspace_domains (domain)
    WHERE status = 'VERIFIED';
-- The re-check walks the verified domains checked longest ago.
CREATE INDEX workspace_domains_recheck ON workspace_domains (checked_at)
    WHERE status = 'VERIFIED';
