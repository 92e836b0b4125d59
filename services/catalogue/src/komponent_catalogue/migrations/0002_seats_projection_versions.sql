-- The seats-taken projection is fed by registration's CourseSeatsChanged, which carries the whole count
-- and a per-course version. Keep the highest version; never let the projection depend on our own rows
-- (an event may name a course before, or after, we know it — a foreign key would dead-letter it).
ALTER TABLE course_seats_taken DROP CONSTRAINT IF EXISTS course_seats_taken_course_id_fkey;
ALTER TABLE course_seats_taken ADD COLUMN capacity integer;
ALTER TABLE course_seats_taken ADD COLUMN waiting_list_length integer NOT NULL DEFAULT 0;
ALTER TABLE course_seats_taken ADD COLUMN version bigint NOT NULL DEFAULT 0;

-- How late each timer fired (fired_at - due_at), kept for the record: after downtime it says how late.
ALTER TABLE course_timers ADD COLUMN lateness_seconds double precision;
