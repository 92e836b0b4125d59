-- Catalogue schema, PostgreSQL 15. Times are timestamptz (UTC instants; shown on the Copenhagen clock),
-- money is bigint øre. The inbox and outbox tables belong to the shared runtime's migrations.

-- One row per course. Fields that queries, constraints or timers depend on are real columns; the
-- descriptive page content (introduction, learning outcomes, instructors, programme, contacts,
-- venue, price terms) lives in `details` as JSONB, written and read whole by the repository.
CREATE TABLE courses (
    course_id               uuid        PRIMARY KEY,
    status                  text        NOT NULL DEFAULT 'draft'
                                        CHECK (status IN ('draft', 'published', 'cancelled', 'completed')),
    title                   text        NOT NULL CHECK (btrim(title) <> ''),
    details                 jsonb       NOT NULL,
    price_excl_vat_ore      bigint      NOT NULL CHECK (price_excl_vat_ore >= 0),
    vat_rate_basis_points   integer     NOT NULL DEFAULT 2500
                                        CHECK (vat_rate_basis_points BETWEEN 0 AND 10000),
    capacity                integer     NOT NULL CHECK (capacity >= 1),
    -- First session start / last session end, denormalised from course_sessions so listing and
    -- timer derivation need no join; the repository writes both in one transaction.
    starts_at               timestamptz NOT NULL,
    ends_at                 timestamptz NOT NULL,
    registration_deadline   timestamptz NOT NULL,
    invoice_lead_days       smallint    NOT NULL DEFAULT 28 CHECK (invoice_lead_days BETWEEN 21 AND 28),
    reminder_lead_days      smallint    NOT NULL DEFAULT 7 CHECK (reminder_lead_days BETWEEN 1 AND 28),
    -- Optimistic concurrency for HTTP updates (If-Match) and for ordering CourseUpdated events.
    version                 integer     NOT NULL DEFAULT 1,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT courses_ends_after_start CHECK (ends_at > starts_at),
    CONSTRAINT courses_deadline_before_start CHECK (registration_deadline < starts_at)
);

-- The public list: published courses by start.
CREATE INDEX courses_published_by_start ON courses (starts_at) WHERE status = 'published';

-- Sessions in page order. Overlap is rejected by the domain (rule "sessions_overlap"); an EXCLUDE
-- constraint would need the btree_gist extension, which we do not want to require of every database.
CREATE TABLE course_sessions (
    course_id   uuid        NOT NULL REFERENCES courses (course_id) ON DELETE CASCADE,
    position    smallint    NOT NULL CHECK (position >= 0),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    PRIMARY KEY (course_id, position),
    CONSTRAINT course_sessions_ends_after_start CHECK (ends_at > starts_at)
);

-- Durable timers (domain/timers.py). A row is pending while fired_at IS NULL. The scheduler claims
-- due rows by the database clock:
--   SELECT … FROM course_timers WHERE fired_at IS NULL AND due_at <= now()
--   ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED
-- then, in the same transaction, inserts the event into the outbox with ce_id = event_id and sets
-- fired_at = now(), status = 'fired'. A crash before commit leaves the row pending; a duplicate
-- emission carries the same event_id and is dropped by consumers' inboxes.
-- Reconciliation (timers.reconcile_timers): "move" updates due_at and event_id of the pending row,
-- "remove" deletes the pending row, "add" inserts. Fired rows are never touched: they are the record
-- that this due time has fired, and their lateness is fired_at - due_at.
CREATE TABLE course_timers (
    timer_id    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    course_id   uuid        NOT NULL REFERENCES courses (course_id) ON DELETE CASCADE,
    kind        text        NOT NULL CHECK (kind IN ('deadline_passed', 'invoice_due', 'course_reminder_due')),
    due_at      timestamptz NOT NULL,
    event_id    uuid        NOT NULL UNIQUE,  -- uuid5(namespace, "<course_id>:<kind>:<due_at UTC ISO>")
    status      text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'fired')),
    fired_at    timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT course_timers_fired_consistent CHECK ((status = 'fired') = (fired_at IS NOT NULL))
);

-- The claim query walks this partial index in due order and never sees fired rows.
CREATE INDEX course_timers_claim ON course_timers (due_at) WHERE fired_at IS NULL;

-- At most one pending timer of each kind per course: a reschedule moves it rather than adding a twin.
CREATE UNIQUE INDEX course_timers_one_pending_per_kind ON course_timers (course_id, kind)
    WHERE fired_at IS NULL;

CREATE INDEX course_timers_by_course ON course_timers (course_id);

-- Seats taken per course: a local projection fed by the registration service's events
-- (confirmed/promoted add, cancelled removes, substituted leaves the count unchanged). Catalogue
-- only reads it to refuse a capacity below the seats already taken; admission itself is guarded by
-- the registration service's own database. Events arrive de-duplicated through the inbox and in
-- course order (Kafka key = course_id), so a plain counter is enough.
CREATE TABLE course_seats_taken (
    course_id       uuid        PRIMARY KEY REFERENCES courses (course_id) ON DELETE CASCADE,
    seats_taken     integer     NOT NULL DEFAULT 0 CHECK (seats_taken >= 0),
    last_event_id   uuid,                   -- ce_id of the last applied event, for debugging
    last_event_at   timestamptz,            -- ce_time of that event
    updated_at      timestamptz NOT NULL DEFAULT now()
);
