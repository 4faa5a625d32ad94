-- People who log in (agents, supervisors, admins), their sessions, and the audit log.

CREATE TABLE users (
    username       text PRIMARY KEY,
    -- An Argon2id string (algorithm, parameters, salt and hash); never the password.
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    -- The ACD agent this login acts as; required for agents, optional for supervisors who
    -- also take calls.
    agent_id       text,
    display_name   text NOT NULL DEFAULT '',
    language       text NOT NULL DEFAULT 'id' CHECK (language IN ('id', 'en')),
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (role <> 'agent' OR agent_id IS NOT NULL)
);
-- Two live logins acting as one agent would fight over its state.
CREATE UNIQUE INDEX users_agent ON users (agent_id) WHERE agent_id IS NOT NULL AND NOT disabled;

CREATE TABLE user_sessions (
    -- SHA-256 of the bearer token: a copy of this table does not let anyone log in.
    token_hash    bytea PRIMARY KEY,
    username      text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    -- Sent back in X-CSRF-Token by the web console on every state-changing request made
    -- with the session cookie.
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,       -- absolute end, whatever the activity
    ended_at      timestamptz,
    -- logout, expired, idle, user_disabled, password_changed
    ended_reason  text,
    ip            text,
    user_agent    text
);
CREATE INDEX user_sessions_user ON user_sessions (username, created_at);

CREATE TABLE audit_log (
    -- Made by the engine, so a retried or replayed write is one row.
    audit_id   text PRIMARY KEY,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,                 -- username, token name, or the name tried
    role       text NOT NULL,                 -- agent, supervisor, admin, anonymous
    action     text NOT NULL,                 -- e.g. auth.login, POST /api/v1/campaigns/{name}/{action}
    target     text NOT NULL DEFAULT '',      -- the path or object acted on
    outcome    text NOT NULL,                 -- ok, denied, failed, rate_limited
    status     integer,
    ip         text,
    detail     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);
CREATE INDEX audit_log_action ON audit_log (action, at);
