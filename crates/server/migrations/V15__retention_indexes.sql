-- Retention deletes by age in small batches; without these each batch would
-- scan the whole table.
CREATE INDEX idempotency_keys_by_time ON idempotency_keys (created_at);
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
