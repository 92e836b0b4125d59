-- The W3C trace context of the event that planned each email, so the SMTP send continues that trace
-- (the sender runs in its own loop, long after the consumer's span ended).
ALTER TABLE send_ledger ADD COLUMN traceparent text, ADD COLUMN tracestate text;
