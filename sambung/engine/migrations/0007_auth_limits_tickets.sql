-- Login attempts counted against the limits, shared by every engine, and the single-use
-- tickets that open the agent events WebSocket.

CREATE TABLE login_attempts (
    -- lower(username), or '' for the address's window over every username (a login name is
    -- never empty).
    username   text NOT NULL,
    address    text NOT NULL,
    -- When each counted attempt began, in seconds since the epoch, oldest first: at most the
    -- limit, since an attempt over it is refused before it is counted.
    attempts   double precision[] NOT NULL DEFAULT '{}',
    -- The newest attempt: a row whose newest attempt has left the window counts nothing and
    -- is purged.
    last_at    double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (address, username)
);
CREATE INDEX login_attempts_last_at ON login_attempts (last_at);

CREATE TABLE ws_tickets (
    -- SHA-256 of the ticket: a copy of this table opens no socket.
    ticket_hash   bytea PRIMARY KEY,
    -- The session it was issued to (the socket lives as long as the session), or NULL for a
    -- configured API token, named in token_name.
    session_hash  bytea REFERENCES user_sessions (token_hash) ON DELETE CASCADE,
    token_name    text,
    role          text NOT NULL,
    agent_id      text,
    expires_at    timestamptz NOT NULL,
    CHECK ((session_hash IS NULL) <> (token_name IS NULL))
);
CREATE INDEX ws_tickets_expires ON ws_tickets (expires_at);
