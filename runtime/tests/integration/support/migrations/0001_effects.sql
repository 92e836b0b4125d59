-- Deliberately no unique constraint: a duplicate effect must show up as a second row.
CREATE TABLE effects (event_id uuid NOT NULL, registration_id uuid NOT NULL, applied_at timestamptz DEFAULT now());
