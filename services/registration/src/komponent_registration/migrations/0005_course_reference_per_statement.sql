-- Registration service, schema 0005: the registration → course reference, checked per statement.
--
-- 0001's foreign key registrations.course_id → course_seats checked every inserted row with a locking
-- lookup of its course row: ~3 µs of PostgreSQL time per row, a sixth of its work on a rush batch, where
-- every row names the same course row the batch already holds FOR UPDATE. The same guarantee, kept by:
--   1. a statement trigger over the rows an INSERT or COPY added: one anti-join against course_seats;
--   2. a registration's course never changes;
--   3. a course row is never removed (a course is cancelled, not deleted; the seat guard needs its row),
-- so a registration that referenced an existing course when inserted references it for good.

ALTER TABLE registrations DROP CONSTRAINT IF EXISTS registrations_course_id_fkey;

CREATE OR REPLACE FUNCTION registrations_of_known_courses() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    unknown uuid;
BEGIN
    SELECT a.course_id INTO unknown FROM added a
     WHERE NOT EXISTS (SELECT 1 FROM course_seats c WHERE c.course_id = a.course_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'registration for unknown course %', unknown
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS registrations_of_known_courses ON registrations;
CREATE TRIGGER registrations_of_known_courses
    AFTER INSERT ON registrations REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION registrations_of_known_courses();

CREATE OR REPLACE FUNCTION refuse_course_reference_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'foreign_key_violation';
END
$$;

DROP TRIGGER IF EXISTS registration_course_is_fixed ON registrations;
CREATE TRIGGER registration_course_is_fixed
    BEFORE UPDATE OF course_id ON registrations
    FOR EACH ROW WHEN (OLD.course_id IS DISTINCT FROM NEW.course_id)
    EXECUTE FUNCTION refuse_course_reference_change('a registration stays on its course');

DROP TRIGGER IF EXISTS course_id_is_fixed ON course_seats;
CREATE TRIGGER course_id_is_fixed
    BEFORE UPDATE OF course_id ON course_seats
    FOR EACH ROW WHEN (OLD.course_id IS DISTINCT FROM NEW.course_id)
    EXECUTE FUNCTION refuse_course_reference_change('a course keeps its id');

DROP TRIGGER IF EXISTS course_rows_stay ON course_seats;
CREATE TRIGGER course_rows_stay
    BEFORE DELETE ON course_seats
    FOR EACH ROW EXECUTE FUNCTION refuse_course_reference_change('a course row is never deleted (cancel it)');

DROP TRIGGER IF EXISTS course_table_stays ON course_seats;
CREATE TRIGGER course_table_stays
    BEFORE TRUNCATE ON course_seats
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_course_reference_change('course rows are never deleted');
