-- ListUsers `query` stays fast between vacuums. A GIN index adds new
-- entries to a pending list that every search reads in full, until
-- autovacuum or an overflowing insert merges it; Postgres lets it grow to
-- 4 MB (gin_pending_list_limit). Measured at 100,000 users: the search
-- "user 4242" took 1.0 ms on a merged index and 7.9 ms once 30,000 users
-- had joined since the last vacuum (30.5-31.6 ms p99 in a load run over a
-- fuller list). With a 64 kB list it took 1.7 ms after the same 30,000
-- joins; a join that overflows the list merges 64 kB, not 4 MB. Changing
-- the option takes no table rewrite and no lock that blocks reads or writes.
ALTER INDEX users_search_trigrams SET (gin_pending_list_limit = 64);
