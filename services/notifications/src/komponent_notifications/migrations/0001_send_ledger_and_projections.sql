-- Notifications' own state: local projections fed by events, and the send ledger.

-- Courses as the catalogue last described them (CoursePublished/Updated/Cancelled).
CREATE TABLE course_projection (
    course_id      uuid PRIMARY KEY,
    snapshot       jsonb       NOT NULL,          -- komponent_contracts CourseSnapshot, as published
    revision       integer     NOT NULL,          -- bumped per update: becomes the .ics SEQUENCE
    cancelled      boolean     NOT NULL DEFAULT false,
    cancel_reason  text        NOT NULL DEFAULT '',
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Registrations as the registration service's outcome events describe them; feeds course reminders
-- (every confirmed participant of a course) and the emails whose events carry no participant.
CREATE TABLE registration_projection (
    registration_id uuid PRIMARY KEY,
    course_id       uuid        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('confirmed', 'waitlisted', 'cancelled')),
    participant     jsonb       NOT NULL,
    buyer           jsonb,
    binding         boolean     NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registration_projection_confirmed ON registration_projection (course_id)
    WHERE status = 'confirmed';

-- Invoices as issued, so a payment reminder can show the invoice's issue date and amounts.
CREATE TABLE billing_document_projection (
    document_id     uuid PRIMARY KEY,
    document_number text  NOT NULL,
    course_id       uuid  NOT NULL,
    document        jsonb NOT NULL
);

-- One row per email ever planned: written in the consumer's inbox transaction, drained by the sender.
-- Key (event_id, recipient, kind): a redelivered event finds its row and plans nothing new.
CREATE TABLE send_ledger (
    id                bigserial PRIMARY KEY,      -- claim order: per-recipient order follows it
    email_id          uuid        NOT NULL UNIQUE, -- = the Message-ID's uuid
    event_id          uuid        NOT NULL,       -- the triggering event (a resend: the resend request)
    recipient         text        NOT NULL,       -- normalised address
    kind              text        NOT NULL,
    caused_by         uuid        NOT NULL,       -- the event that caused the original email
    course_id         uuid        NOT NULL,
    registration_id   uuid,
    document_number   text,
    render_data       jsonb       NOT NULL,
    message_id        text        NOT NULL,
    status            text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    -- attempts: claims started; outcomes: claims whose result was recorded. A claim that never got
    -- recorded (the process died) may have been accepted by SMTP: attempts - outcomes bounds duplicates.
    attempts          integer     NOT NULL DEFAULT 0,
    outcomes          integer     NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    claimed_until     timestamptz,
    last_code         integer,
    last_reply        text,
    resend_of         bigint REFERENCES send_ledger (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    sent_at           timestamptz,
    failed_at         timestamptz,
    UNIQUE (event_id, recipient, kind)
);
-- The claim looks at the oldest pending row per recipient.
CREATE INDEX send_ledger_pending ON send_ledger (recipient, id) WHERE status = 'pending';
CREATE INDEX send_ledger_course ON send_ledger (course_id, id);
CREATE INDEX send_ledger_registration ON send_ledger (registration_id, id) WHERE registration_id IS NOT NULL;
