-- Registration service, schema 0001 (PostgreSQL 15).
--
-- course_seats   the local projection of each course (fed by catalogue events) plus the seat counter;
-- registrations  one row per registration, its seat / waiting-list state, binding flag and FCFS audit;
-- idempotency_keys  replayable answers for the HTTP intake's Idempotency-Key header.
-- Inbox and outbox tables belong to the shared runtime's migrations and are not created here.
--
-- The overbooking guard has three layers, each sufficient on its own against a different failure:
--   1. course_seats_admission_guard (row trigger): seats_taken may only GROW while it ends within
--      capacity and the course is published. A plain CHECK (seats_taken <= capacity) cannot be used:
--      lowering capacity below the seats already taken must be accepted (nobody is bumped), and then
--      any later write of that row would violate the CHECK. The trigger compares OLD and NEW, so a
--      lowered capacity is stored, seats may be freed, but no admission passes until seats_taken has
--      fallen below the new capacity. This is the "seats_taken + k <= capacity" rule, enforced on every
--      UPDATE rather than trusted to each caller's WHERE clause.
--   2. seats_match_confirmed (deferred constraint triggers): at commit, seats_taken must equal the number
--      of confirmed registrations of the course. A seat can therefore only be given by also moving the
--      guarded counter; inserting or promoting a confirmed row without it fails the whole transaction.
--   3. course_seats.version (optimistic, used by the repository): a batch writes the course row with
--      "WHERE version = <version it was applied to>"; a writer that lost its partition in a rebalance
--      (a zombie) updates 0 rows and must roll back. Layers 1-2 hold even if that check is forgotten.

CREATE TABLE IF NOT EXISTS course_seats (
    course_id         uuid        PRIMARY KEY,
    capacity          integer     NOT NULL CHECK (capacity >= 0),
    seats_taken       integer     NOT NULL DEFAULT 0 CHECK (seats_taken >= 0),
    starts_at         timestamptz NOT NULL,
    deadline          timestamptz NOT NULL,
    status            text        NOT NULL CHECK (status IN ('published', 'cancelled', 'started')),
    -- Kept as state, not derived from now(): binding is decided by the command's own timestamp in the
    -- domain, and replaying a partition must give the same answer whatever the wall clock says.
    deadline_passed   boolean     NOT NULL DEFAULT false,
    -- The next waiting-list ticket. Monotonic and never reused, so promotions never renumber anyone;
    -- the position shown to a participant is the rank among waitlisted tickets.
    next_queue_number bigint      NOT NULL DEFAULT 1 CHECK (next_queue_number >= 1),
    version           bigint      NOT NULL DEFAULT 0 CHECK (version >= 0),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cancelled_course_holds_no_seats CHECK (status <> 'cancelled' OR seats_taken = 0)
);

CREATE TABLE IF NOT EXISTS registrations (
    registration_id   uuid        PRIMARY KEY,
    course_id         uuid        NOT NULL REFERENCES course_seats (course_id),
    -- Normalised at intake (trimmed, lower-case); the duplicate check below depends on it.
    participant_email text        NOT NULL
        CHECK (participant_email = lower(btrim(participant_email)) AND participant_email LIKE '_%@_%'),
    status            text        NOT NULL CHECK (status IN ('confirmed', 'waitlisted', 'cancelled')),
    binding           boolean     NOT NULL DEFAULT false,
    binding_since     timestamptz,
    queue_number      bigint      CHECK (queue_number >= 1),
    -- FCFS audit: when intake received it and where it sits in the course's partition.
    received_at       timestamptz NOT NULL,
    source_topic      text        NOT NULL,
    source_partition  integer     NOT NULL CHECK (source_partition >= 0),
    source_offset     bigint      NOT NULL CHECK (source_offset >= 0),
    cancelled_at      timestamptz,
    -- The validated intake form (name, billing address, EAN/CVR, person reference, order number).
    -- Seat allocation never reads it; billing and notifications receive it in events.
    details           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT waitlisted_has_a_queue_number CHECK (status <> 'waitlisted' OR queue_number IS NOT NULL),
    CONSTRAINT waiting_is_never_binding CHECK (NOT (status = 'waitlisted' AND binding)),
    CONSTRAINT binding_has_a_time CHECK (NOT binding OR binding_since IS NOT NULL),
    CONSTRAINT cancelled_has_a_time CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    CONSTRAINT queue_numbers_are_never_reused UNIQUE (course_id, queue_number),
    -- One registration per partition record: a redelivered record cannot create a second row.
    CONSTRAINT one_registration_per_record UNIQUE (source_topic, source_partition, source_offset)
);

-- Same participant twice on one course is one registration; a cancelled one does not block re-registering.
CREATE UNIQUE INDEX IF NOT EXISTS registrations_one_active_per_participant
    ON registrations (course_id, participant_email) WHERE status <> 'cancelled';
-- Loading a course's book (every active registration) and the seat count of the consistency trigger.
CREATE INDEX IF NOT EXISTS registrations_active_by_course
    ON registrations (course_id, status) WHERE status <> 'cancelled';

-- Layer 1: admissions only within capacity ------------------------------------------------------------

CREATE OR REPLACE FUNCTION course_seats_admission_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    seats_before integer := CASE WHEN TG_OP = 'INSERT' THEN 0 ELSE OLD.seats_taken END;
BEGIN
    IF NEW.seats_taken > seats_before AND NEW.status <> 'published' THEN
        RAISE EXCEPTION 'admission refused for course %: course is % (not published)', NEW.course_id, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.seats_taken > seats_before AND NEW.seats_taken > NEW.capacity THEN
        RAISE EXCEPTION 'overbooking refused for course %: % seats taken of capacity % (was %)',
            NEW.course_id, NEW.seats_taken, NEW.capacity, seats_before
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS course_seats_admission_guard ON course_seats;
CREATE TRIGGER course_seats_admission_guard
    BEFORE INSERT OR UPDATE ON course_seats
    FOR EACH ROW EXECUTE FUNCTION course_seats_admission_guard();

-- Layer 2: the counter and the confirmed rows agree at commit -------------------------------------------

CREATE OR REPLACE FUNCTION seats_match_confirmed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    checked_course uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.course_id ELSE NEW.course_id END;
    counter integer;
    confirmed integer;
BEGIN
    SELECT seats_taken INTO counter FROM course_seats WHERE course_id = checked_course;
    SELECT count(*) INTO confirmed
      FROM registrations WHERE course_id = checked_course AND status = 'confirmed';
    IF coalesce(counter, 0) <> confirmed THEN
        RAISE EXCEPTION 'seat counter of course % is % but % registrations are confirmed',
            checked_course, coalesce(counter, 0), confirmed
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

-- Fire only where a seat can change hands, so waiting-list inserts in a hot batch cost nothing extra.
-- Constraint triggers cannot be CREATE OR REPLACEd, hence the DROP first (the runner may re-run files).
DROP TRIGGER IF EXISTS seats_match_on_course ON course_seats;
CREATE CONSTRAINT TRIGGER seats_match_on_course
    AFTER INSERT OR UPDATE OF seats_taken ON course_seats
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION seats_match_confirmed();

DROP TRIGGER IF EXISTS seats_match_on_confirmed_insert ON registrations;
CREATE CONSTRAINT TRIGGER seats_match_on_confirmed_insert
    AFTER INSERT ON registrations
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.status = 'confirmed')
    EXECUTE FUNCTION seats_match_confirmed();

DROP TRIGGER IF EXISTS seats_match_on_status_change ON registrations;
CREATE CONSTRAINT TRIGGER seats_match_on_status_change
    AFTER UPDATE OF status, course_id ON registrations
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN ((OLD.status = 'confirmed' OR NEW.status = 'confirmed')
                       AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.course_id <> NEW.course_id))
    EXECUTE FUNCTION seats_match_confirmed();

DROP TRIGGER IF EXISTS seats_match_on_confirmed_delete ON registrations;
CREATE CONSTRAINT TRIGGER seats_match_on_confirmed_delete
    AFTER DELETE ON registrations
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.status = 'confirmed')
    EXECUTE FUNCTION seats_match_confirmed();

-- HTTP Idempotency-Key ----------------------------------------------------------------------------------

-- pretix semantics: a repeated key replays the stored answer; a concurrent call while the first is
-- in_progress gets 409 with Retry-After; the same key with a different request_hash is a client error.
-- 409/429/503 answers are never stored as done, so the client can retry them with the same key.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    -- The caller's scope (API client / token id), so two clients cannot collide on the same key.
    scope           text        NOT NULL DEFAULT '',
    key             text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash    text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('in_progress', 'done')),
    response_status integer     CHECK (response_status BETWEEN 100 AND 599),
    response        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    PRIMARY KEY (scope, key),
    CONSTRAINT done_has_a_response CHECK (
        (status = 'done') = (response_status IS NOT NULL AND response IS NOT NULL AND completed_at IS NOT NULL)
    )
);

-- Expiry sweep, and taking over an in_progress key whose request died with its process.
CREATE INDEX IF NOT EXISTS idempotency_keys_created_at ON idempotency_keys (created_at);
