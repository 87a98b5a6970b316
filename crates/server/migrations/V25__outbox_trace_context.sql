-- The W3C trace context (traceparent, tracestate) of the change that wrote
-- each row: the relay publishes the row in that trace, so everything the
-- message causes (the email, its delivery result) joins the change's trace.
-- NULL when the writing server records no traces. Nullable without a
-- default: adding them rewrites nothing.
ALTER TABLE outbox
    ADD COLUMN traceparent text,
    ADD COLUMN tracestate text;
