-- Layer 2 of the overbooking guard (0001) checks each course once per transaction instead of once per row.
--
-- The constraint triggers are per row, so a batch confirming k registrations of a course ran the check
-- k + 1 times at commit (k inserts and the counter's update), each counting every confirmed registration
-- of the course: O(k x confirmed) per batch, twice per registration at low load, and growing as a course
-- fills. The triggers are deferred, so every check of a transaction runs at its commit and sees the same
-- final rows: the first check of a course decides, and it adds the course to the transaction's list of
-- checked courses (SET LOCAL: the list ends with it). One setting holds the list: a setting per course
-- made each new course a new server variable, which cost more than the count it saved. Nothing here sets
-- the constraints IMMEDIATE, which would run checks before the transaction's last write; the tests pin
-- that the list does not outlive its transaction.
CREATE OR REPLACE FUNCTION seats_match_confirmed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    checked_course uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.course_id ELSE NEW.course_id END;
    -- Course ids separated by spaces; an id has none, so a match is always one whole id.
    checked text := coalesce(current_setting('komponent.seats_checked', true), '');
    counter integer;
    confirmed integer;
BEGIN
    IF position(checked_course::text IN checked) > 0 THEN
        RETURN NULL;
    END IF;
    SELECT seats_taken INTO counter FROM course_seats WHERE course_id = checked_course;
    SELECT count(*) INTO confirmed
      FROM registrations WHERE course_id = checked_course AND status = 'confirmed';
    IF coalesce(counter, 0) <> confirmed THEN
        RAISE EXCEPTION 'seat counter of course % is % but % registrations are confirmed',
            checked_course, coalesce(counter, 0), confirmed
            USING ERRCODE = 'check_violation';
    END IF;
    PERFORM set_config('komponent.seats_checked', checked || checked_course::text || ' ', true);
    RETURN NULL;
END
$$;
