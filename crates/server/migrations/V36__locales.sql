-- Languages (issue 26 §2): each invitation's (its email and page are
-- written in it) and each workspace's default (invitations sent without
-- one, the accepted notice, the join request confirmation). A supported
-- locale's canonical BCP 47 tag (`en`, `de`, `fr`, `es`, `pt-BR`, `ja`,
-- `ar`); the service checks it, so adding a language needs no migration.
-- A constant default: no table rewrite (Postgres 11 and later).
ALTER TABLE invitations
    ADD COLUMN locale text NOT NULL DEFAULT 'en';
ALTER TABLE workspaces
    ADD COLUMN default_locale text NOT NULL DEFAULT 'en';
