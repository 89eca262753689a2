-- Roles of a guarded ledger (run once by the postgres image on an empty data directory):
-- ledger_owner owns the database and creates the schema with `ledger db init --owner-url`;
-- ledger, the role every process connects as, may then only read and append events (and make read-model schemas).
CREATE ROLE ledger_owner LOGIN PASSWORD 'ledger_owner' NOSUPERUSER;
CREATE ROLE ledger LOGIN PASSWORD 'ledger' NOSUPERUSER;
CREATE DATABASE ledger OWNER ledger_owner;
GRANT CONNECT, CREATE ON DATABASE ledger TO ledger;
