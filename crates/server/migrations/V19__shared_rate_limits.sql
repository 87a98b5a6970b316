-- Rate limits shared by every replica (sign-in, invitations, token
-- attempts): one row per limit and key, holding the GCRA's theoretical
-- arrival time (TAT). A row whose TAT has passed means a full budget, so
-- retention deletes it. Keys are HMAC-SHA256 digests the service makes
-- with the secret below: the table holds no email, address or token.
CREATE TABLE rate_limits (
    name text NOT NULL,
    key bytea NOT NULL,
    tat timestamptz NOT NULL,
    PRIMARY KEY (name, key)
) WITH (fillfactor = 80); -- room for HOT updates: every check rewrites its row

-- The key of those digests, made once, the same for every replica.
CREATE TABLE rate_limit_secret (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    secret bytea NOT NULL
);
INSERT INTO rate_limit_secret (secret)
VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));

-- Takes one unit of each limit in turn (limit i: a unit comes back every
-- emission[i] seconds, at most tolerance[i] seconds of units taken ahead),
-- stopping at the first that has none; those before it keep theirs (a
-- transaction that rolls back gives them back). NULL when every limit had
-- room, else the seconds until the refusing one has. Each check is one
-- atomic upsert of its row, so concurrent replicas never both take the
-- last unit.
CREATE FUNCTION take_rate_limits(
    names text[], keys bytea[], emission float8[], tolerance float8[]
) RETURNS float8
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    at timestamptz := clock_timestamp();
    next_tat timestamptz;
BEGIN
    FOR i IN 1 .. coalesce(array_length(names, 1), 0) LOOP
        INSERT INTO rate_limits AS l (name, key, tat)
        VALUES (names[i], keys[i], at + make_interval(secs => emission[i]))
        ON CONFLICT (name, key) DO UPDATE
            SET tat = greatest(l.tat, at) + make_interval(secs => emission[i])
            WHERE l.tat <= at + make_interval(secs => tolerance[i])
        RETURNING tat INTO next_tat;
        IF NOT FOUND THEN
            SELECT tat INTO next_tat FROM rate_limits WHERE name = names[i] AND key = keys[i];
            RETURN extract(epoch FROM next_tat - at) - tolerance[i];
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
