-- Runs once, when the postgres container initialises an empty data volume
-- (/docker-entrypoint-initdb.d). One database per service, as in production: a service only ever
-- connects to its own. The role and password are the development defaults of komponent_runtime.settings;
-- they are not secrets and must never be used outside this compose stack.
CREATE ROLE komponent LOGIN PASSWORD 'komponent';
CREATE DATABASE catalogue OWNER komponent;
CREATE DATABASE registration OWNER komponent;
CREATE DATABASE billing OWNER komponent;
CREATE DATABASE notifications OWNER komponent;
