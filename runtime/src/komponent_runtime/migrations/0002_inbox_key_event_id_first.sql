-- The inbox key led with the consumer's name, so every insert of a batch compared that text (with the
-- database's collation) at each level of the btree before it reached the event id. With the event id
-- first, the uuid decides almost every comparison: about a fifth less PostgreSQL time per recorded event
-- (issue #4). Nothing reads the inbox by consumer; its only use is this key's uniqueness.
ALTER TABLE inbox DROP CONSTRAINT inbox_pkey, ADD PRIMARY KEY (event_id, consumer);
