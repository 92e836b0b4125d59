-- Registration service, schema 0002: what the wiring phase needs on top of 0001.

-- The allocator keeps a course's book in memory while it owns the course's partition. Every write of the
-- course row stores a fresh random token; a cached book is reused only if the row still carries the token
-- this process wrote. A rolled-back batch, a write by another instance (rebalance) or by the course
-- projection all change or keep the token in a way the cache detects, so a stale book is never applied.
ALTER TABLE course_seats ADD COLUMN IF NOT EXISTS write_token uuid;

-- Registrations that never got a row in `registrations`: rejected (unknown, cancelled or started course)
-- or refused as a duplicate of the participant's existing registration. Kept so the status URL the
-- intake handed out can answer for them too.
CREATE TABLE IF NOT EXISTS refused_registrations (
    registration_id          uuid        PRIMARY KEY,
    course_id                uuid        NOT NULL,
    reason                   text        NOT NULL,
    existing_registration_id uuid,
    refused_at               timestamptz NOT NULL
);
