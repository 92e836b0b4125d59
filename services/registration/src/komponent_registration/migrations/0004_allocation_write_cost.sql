-- Registration service, schema 0004: less work per inserted registration row (issue #4, the batch COPY).
-- In a rush nearly every row is a waiting-list entry; PostgreSQL spent ~20 µs on each, a third of it
-- parsing the stored form into jsonb and updating an index no statement needed for those rows.

-- 0001's registrations_active_by_course (course_id, status) WHERE status <> 'cancelled' served two
-- statements: the seat count of the guard's constraint triggers (confirmed rows of a course) and loading
-- a course's book. The book's query (active rows OR named ids) is planned as a bitmap OR of
-- registrations_one_active_per_participant (same predicate, course_id first) and the primary key, so
-- only the guard needs this index, and only its confirmed rows: waiting-list inserts no longer touch it.
-- The guard itself is unchanged. tests/integration/test_stored_rows.py checks every statement on
-- registrations still has an index to use.
DROP INDEX IF EXISTS registrations_active_by_course;
CREATE INDEX IF NOT EXISTS registrations_confirmed_by_course
    ON registrations (course_id) WHERE status = 'confirmed';

-- The stored form (participant, buyer, terms version) is written by the service as JSON and read back
-- whole, never queried inside PostgreSQL: plain text spares the jsonb parse on every insert. Statements
-- that merge into it (a substitution) cast to jsonb for that one row.
ALTER TABLE registrations
    ALTER COLUMN details DROP DEFAULT,
    ALTER COLUMN details TYPE text USING details::text,
    ALTER COLUMN details SET DEFAULT '{}';
