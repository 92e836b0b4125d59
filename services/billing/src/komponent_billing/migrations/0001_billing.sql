-- Billing: local projections (courses, registrations), issued documents, delivery, payments, reminders.

-- Course snapshots from komponent.course.v1, plus the two facts billing derives per course: the invoice run
-- has happened (InvoiceDue seen) and the course was cancelled. The row is also the per-course lock that
-- serialises the invoice run, late registrations and cancellations (SELECT … FOR UPDATE).
CREATE TABLE billing_course (
    course_id       uuid PRIMARY KEY,
    snapshot        jsonb,                 -- NULL until CoursePublished arrives (topics are not ordered)
    cancelled       boolean     NOT NULL DEFAULT false,
    invoice_run_at  timestamptz,           -- first InvoiceDue applied; later confirmations invoice at once
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Registrations with the buyer data and binding flag from komponent.registration.v1.
CREATE TABLE billing_registration (
    registration_id uuid PRIMARY KEY,
    course_id       uuid        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    binding         boolean     NOT NULL,
    participant     jsonb       NOT NULL,
    buyer           jsonb       NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_registration_course ON billing_registration (course_id);

-- One counter row per number series (e.g. '2026', 'KN-2026'). Locked FOR UPDATE by the issuing
-- transaction: a rolled-back issue leaves last_issued unchanged, so the series stays gapless.
-- A sequence is deliberately not used: it leaves gaps on rollback.
CREATE TABLE document_number_counter (
    series_key  text PRIMARY KEY,
    last_issued integer NOT NULL CHECK (last_issued >= 0)
);

-- Issued invoices and credit notes. Write-once: the trigger below refuses UPDATE and DELETE, so an issued
-- document (its numbers, buyer snapshot, XML and PDF) can never change. Mutable facts (delivery, payments,
-- reminders) live in their own tables.
CREATE TABLE billing_document (
    document_id          uuid PRIMARY KEY,
    kind                 text        NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    number               text        NOT NULL UNIQUE,
    series_key           text        NOT NULL,
    sequence             integer     NOT NULL CHECK (sequence >= 1),
    course_id            uuid        NOT NULL,
    registration_id      uuid        NOT NULL,
    issue_date           date        NOT NULL,
    due_date             date,
    issued_at            timestamptz NOT NULL,
    buyer_ean            text        NOT NULL,
    total_excl_vat_ore   bigint      NOT NULL CHECK (total_excl_vat_ore >= 0),
    vat_ore              bigint      NOT NULL CHECK (vat_ore >= 0),
    total_incl_vat_ore   bigint      NOT NULL CHECK (total_incl_vat_ore >= 0),
    credits_document_id  uuid REFERENCES billing_document (document_id),   -- credit note → its invoice
    replaces_document_id uuid REFERENCES billing_document (document_id),   -- new invoice → credited one
    reason               text,
    peppol_xml           bytea       NOT NULL,
    oioubl_xml           bytea       NOT NULL,
    pdf                  bytea       NOT NULL,
    snapshot             bytea       NOT NULL,
    snapshot_sha256      text        NOT NULL,
    UNIQUE (series_key, sequence),
    CHECK ((kind = 'credit_note') = (credits_document_id IS NOT NULL)),
    CHECK (kind = 'invoice' OR replaces_document_id IS NULL)
);
CREATE INDEX billing_document_course ON billing_document (course_id);
CREATE INDEX billing_document_registration ON billing_document (registration_id);
-- Last guards against double billing, whatever the code does: an invoice is credited at most once and
-- replaced at most once, and a registration has at most one original (non-replacement) invoice.
CREATE UNIQUE INDEX billing_document_one_credit ON billing_document (credits_document_id)
    WHERE credits_document_id IS NOT NULL;
CREATE UNIQUE INDEX billing_document_one_replacement ON billing_document (replaces_document_id)
    WHERE replaces_document_id IS NOT NULL;
CREATE UNIQUE INDEX billing_document_one_original_invoice ON billing_document (registration_id)
    WHERE kind = 'invoice' AND replaces_document_id IS NULL;

CREATE FUNCTION billing_document_is_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'issued document % cannot be %d; issue a credit note instead', OLD.number, lower(TG_OP)
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER billing_document_immutable BEFORE UPDATE OR DELETE ON billing_document
    FOR EACH ROW EXECUTE FUNCTION billing_document_is_immutable();

-- Hand-off to the access point, one row per document, written in the issuing transaction. The delivery
-- loop claims pending rows (SKIP LOCKED) and marks them delivered after the access point accepted them,
-- so a crash between commit and hand-off only delays delivery.
CREATE TABLE document_delivery (
    document_id     uuid PRIMARY KEY REFERENCES billing_document (document_id),
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'rejected', 'undeliverable')),
    format          text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    message_id      text,
    delivered_at    timestamptz,
    last_error      text
);
CREATE INDEX document_delivery_pending ON document_delivery (next_attempt_at) WHERE status = 'pending';

CREATE TABLE payment (
    payment_id     uuid PRIMARY KEY,
    document_id    uuid        NOT NULL REFERENCES billing_document (document_id),
    amount_ore     bigint      NOT NULL CHECK (amount_ore > 0),
    paid_on        date        NOT NULL,
    registered_at  timestamptz NOT NULL
);
CREATE INDEX payment_document ON payment (document_id);

CREATE TABLE payment_reminder (
    document_id  uuid        NOT NULL REFERENCES billing_document (document_id),
    sequence     integer     NOT NULL CHECK (sequence BETWEEN 1 AND 3),
    sent_on      date        NOT NULL,
    fee_ore      bigint      NOT NULL DEFAULT 0,
    compensation_ore bigint  NOT NULL DEFAULT 0,
    event_id     uuid        NOT NULL,
    PRIMARY KEY (document_id, sequence)
);
