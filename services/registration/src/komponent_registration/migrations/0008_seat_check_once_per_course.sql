-- Layer 2 of the overbooking guard (0001) checks each course once per transaction instead of once per row.
--
-- The constraint triggers are per row, so a batch confirming k registrations of a course ran the check
-- k + 1 times at commit (k inserts and the counter's update), each counting every confirmed registration
-- of the course: O(k x confirmed) per batch, twice per registration at low load, and growing as a course
-- fills. The triggers are deferred, so every check of a transaction runs at its commit and sees the same
-- final rows: the first check of a course decides, and it marks the course checked for the rest of the
-- transaction (SET LOCAL: the mark ends with it). Nothing here sets the constraints IMMEDIATE, which would
-- run checks before the transaction's last write; the tests pin that the mark does not outlive it.
CREATE OR REPLACE FUNCTION seats_match_confirmed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    checked_course uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.course_id ELSE NEW.course_id END;
    checked_mark text := 'komponent_seats_checked.c' || replace(checked_course::text, '-', '');
    counter integer;
    confirmed integer;
BEGIN
    IF current_setting(checked_mark, true) = 'yes' THEN
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
    PERFORM set_config(checked_mark, 'yes', true);
    RETURN NULL;
END
$$;
