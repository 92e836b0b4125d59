-- Registration service, schema 0003: erasure on request (GDPR art. 17).
-- An erased registration keeps its ids, course, status, binding and FCFS order; its participant's name,
-- email, phone and job title are replaced by a placeholder (komponent_contracts.erasure), and erased_at
-- records when. The placeholder address is unique per registration, so the one-active-per-participant
-- index still holds.
ALTER TABLE registrations ADD COLUMN IF NOT EXISTS erased_at timestamptz;
