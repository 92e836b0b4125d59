-- Who handed a registration over to a colleague (a substitution): the registration's row names the
-- colleague from then on, so an erasure request from the person who left would find nothing without this.
-- Their address only (normalised like registrations.participant_email); the erasure deletes the row.
CREATE TABLE IF NOT EXISTS former_participants (
    substitution_event_id uuid        PRIMARY KEY,  -- the ParticipantSubstituted event that replaced them
    registration_id       uuid        NOT NULL,
    course_id             uuid        NOT NULL,
    participant_email     text        NOT NULL,
    substituted_at        timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS former_participants_email ON former_participants (participant_email);
