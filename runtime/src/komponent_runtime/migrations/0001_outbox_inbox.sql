-- Plumbing tables every service database has: the transactional outbox and the consumer inbox.

-- Events waiting to be published. Written in the same transaction as the domain change that caused them.
CREATE TABLE IF NOT EXISTS outbox (
    id            bigserial PRIMARY KEY,
    event_id      uuid        NOT NULL,
    topic         text        NOT NULL,
    kafka_key     bytea       NOT NULL,
    headers       jsonb       NOT NULL,
    value         bytea       NOT NULL,
    traceparent   text,
    tracestate    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
-- The relay only ever scans unpublished rows, in id order.
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Which events each consumer has applied: the de-duplication record, keyed on the CloudEvents id.
CREATE TABLE IF NOT EXISTS inbox (
    consumer      text        NOT NULL,
    event_id      uuid        NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
