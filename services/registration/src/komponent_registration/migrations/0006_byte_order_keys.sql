-- Registration service, schema 0006: byte-order comparisons in the keys every new registration enters
-- (issue #4, the allocator's write cost).
--
-- The participant's email (one active registration per participant and course) and the source topic (one
-- registration per Kafka record) were compared with the database's linguistic collation at each btree level
-- of every insert. Both keys only ever need equality, which is the same under "C" (both are deterministic
-- collations): same guarantees, cheaper comparisons. The record key now leads with the offset, which
-- differs between neighbours, instead of the topic name, which is the same in every row.
ALTER TABLE registrations DROP CONSTRAINT IF EXISTS registrations_participant_email_check;
ALTER TABLE registrations DROP CONSTRAINT IF EXISTS one_registration_per_record;
ALTER TABLE registrations
    ALTER COLUMN participant_email TYPE text COLLATE "C",
    ALTER COLUMN source_topic TYPE text COLLATE "C";
-- lower() under "C" folds ASCII only: the canonical-form check keeps the database's collation.
ALTER TABLE registrations
    ADD CONSTRAINT registrations_participant_email_check CHECK (
        participant_email = lower(btrim(participant_email) COLLATE "default")
        AND participant_email LIKE '_%@_%'
    ),
    ADD CONSTRAINT one_registration_per_record UNIQUE (source_offset, source_partition, source_topic);
