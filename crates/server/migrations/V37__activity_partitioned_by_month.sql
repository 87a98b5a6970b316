-- The activity log becomes a table partitioned by month of occurred_at
-- (native range partitioning): retention drops whole months instead of
-- deleting rows, and each month's indexes stay the size of a month.
--
-- The live table is not rewritten. It becomes the first partition, holding
-- everything before the next month boundary: a CHECK constraint, added
-- NOT VALID and then validated (one scan, no rewrite), proves its rows fit,
-- so ATTACH PARTITION does not scan again, and its indexes become the
-- partitions of the parent's. What blocks writes meanwhile is the rename's
-- lock, for the length of that one scan (0.4 s for a million rows, measured).
-- Retention keeps month partitions made ahead of time (activity_maintain);
-- a default partition catches a row no month was made for (retention was
-- off), and the month's partition takes such rows over when it is made.
-- The parent has no primary key: a unique index on it must hold the
-- partition key, which the old partition's does not, and building one would
-- rewrite nothing but scan and sort the whole log. Entries are only
-- appended, with ids the service generates.

ALTER TABLE activity RENAME TO activity_until_partitioning;
ALTER INDEX activity_by_time RENAME TO activity_until_partitioning_by_time;
ALTER INDEX activity_by_target RENAME TO activity_until_partitioning_by_target;
ALTER INDEX activity_by_actor RENAME TO activity_until_partitioning_by_actor;

CREATE TABLE activity (
    LIKE activity_until_partitioning INCLUDING DEFAULTS INCLUDING CONSTRAINTS
) PARTITION BY RANGE (occurred_at);
ALTER TABLE activity
    ADD FOREIGN KEY (workspace_id) REFERENCES workspaces (id);

DO $$
DECLARE
    boundary timestamptz := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                            + interval '1 month';
BEGIN
    EXECUTE format(
        'ALTER TABLE activity_until_partitioning ADD CONSTRAINT activity_until_partitioning_bound '
        'CHECK (occurred_at IS NOT NULL AND occurred_at < %L) NOT VALID', boundary);
    EXECUTE 'ALTER TABLE activity_until_partitioning VALIDATE CONSTRAINT activity_until_partitioning_bound';
    EXECUTE format(
        'ALTER TABLE activity ATTACH PARTITION activity_until_partitioning FOR VALUES FROM (MINVALUE) TO (%L)',
        boundary);
END $$;

-- The parent's indexes: made on the parent alone, then the old partition's
-- matching indexes attached, so nothing is built over the old rows.
CREATE INDEX activity_by_time ON ONLY activity (workspace_id, occurred_at DESC, id DESC);
CREATE INDEX activity_by_target ON ONLY activity (workspace_id, target_user_id, occurred_at DESC);
CREATE INDEX activity_by_actor ON ONLY activity (workspace_id, actor_id, occurred_at DESC);
ALTER INDEX activity_by_time ATTACH PARTITION activity_until_partitioning_by_time;
ALTER INDEX activity_by_target ATTACH PARTITION activity_until_partitioning_by_target;
ALTER INDEX activity_by_actor ATTACH PARTITION activity_until_partitioning_by_actor;

CREATE TABLE activity_unplanned PARTITION OF activity DEFAULT;

-- Each partition of the activity log and the end of its range (none for
-- the default partition).
CREATE FUNCTION activity_partitions(OUT name text, OUT upper_bound timestamptz)
RETURNS SETOF record
LANGUAGE sql STABLE AS $$
    SELECT c.relname::text,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'activity'::regclass
$$;

-- Makes the month partitions not yet made, up to the one `ahead` months
-- after the month of `at`, and drops the partitions whose every row is
-- older than `keep` months before that month (none when `keep` is 0): how
-- many of each. The first partition (everything before partitioning) goes
-- once its range ended that long ago. Retention calls it under its
-- advisory lock, at now(); a test, at a later time.
CREATE FUNCTION activity_maintain(keep integer, ahead integer, at timestamptz DEFAULT now(),
                                  OUT created integer, OUT dropped integer)
LANGUAGE plpgsql AS $$
DECLARE
    this_month timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    month_start timestamptz;
    old record;
BEGIN
    created := 0;
    dropped := 0;
    -- From the end of the last partition, so the months stay contiguous
    -- even after rounds that did not run for a while.
    SELECT max(upper_bound) INTO month_start FROM activity_partitions();
    WHILE month_start <= this_month + make_interval(months => ahead) LOOP
        -- Rows the default partition caught for this month (no round ran
        -- in time) move into it, or Postgres refuses to make it.
        CREATE TEMPORARY TABLE activity_moving ON COMMIT DROP AS
            WITH moved AS (
                DELETE FROM activity_unplanned
                WHERE occurred_at >= month_start AND occurred_at < month_start + interval '1 month'
                RETURNING *)
            SELECT * FROM moved;
        EXECUTE format('CREATE TABLE %I PARTITION OF activity FOR VALUES FROM (%L) TO (%L)',
                       'activity_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM'),
                       month_start, month_start + interval '1 month');
        INSERT INTO activity SELECT * FROM activity_moving;
        DROP TABLE activity_moving;
        created := created + 1;
        month_start := month_start + interval '1 month';
    END LOOP;
    IF keep > 0 THEN
        FOR old IN
            SELECT name FROM activity_partitions()
            WHERE upper_bound <= this_month - make_interval(months => keep)
        LOOP
            EXECUTE format('ALTER TABLE activity DETACH PARTITION %I', old.name);
            EXECUTE format('DROP TABLE %I', old.name);
            dropped := dropped + 1;
        END LOOP;
    END IF;
END $$;

SELECT activity_maintain(0, 2);
