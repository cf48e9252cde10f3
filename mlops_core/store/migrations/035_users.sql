-- 035: dashboard and service accounts: a name, a role (viewer, operator, admin) and an argon2id
-- password hash (argon2-cffi's encoded form, which carries its own salt and cost parameters).
-- A disabled account keeps its row, so the audit log's names stay explained.
CREATE TABLE users (
    name                VARCHAR PRIMARY KEY,
    role                VARCHAR NOT NULL,
    password_hash       VARCHAR,                   -- NULL: no password login (e.g. an OpenID Connect user)
    disabled            BOOLEAN NOT NULL DEFAULT false,
    created_at          TIMESTAMP NOT NULL,
    created_by          VARCHAR NOT NULL,
    password_changed_at TIMESTAMP
);
