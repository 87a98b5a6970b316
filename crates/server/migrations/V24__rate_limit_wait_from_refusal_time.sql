-- The wait a refusal reports is counted from the moment of the refusal, not
-- from the clock read when the check began: a check that waited for another
-- replica's row lock could otherwise report a unit's whole interval plus
-- that wait (12.003 s for a unit every 12 s), because the row it then read
-- was advanced from the other replica's later clock. Everything else is
-- V19's rule unchanged.
CREATE OR REPLACE FUNCTION take_rate_limits(
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
            RETURN extract(epoch FROM next_tat - clock_timestamp()) - tolerance[i];
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
