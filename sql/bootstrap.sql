-- Schemas of docs/sql-reference.md. health_rls itself is the extension schema (control file).
CREATE SCHEMA IF NOT EXISTS auth;
CREATE SCHEMA IF NOT EXISTS health;
GRANT USAGE ON SCHEMA auth, health, health_rls TO PUBLIC;
