-- Call recordings (one row per recorded talk with an agent), who listened to or downloaded
-- them, and supervisors' listen / whisper / barge sessions.

-- No foreign key to calls: the row arrives from the recordings' own durable queue, which may
-- replay it before (or without) the fact writer's call row after an outage.
CREATE TABLE recordings (
    name              text PRIMARY KEY,       -- Asterisk's recording name: sambung/<call id>[-n]
    call_id           text NOT NULL,
    segment           integer NOT NULL,       -- 1, then 2... after a transfer to another agent
    agent_id          text NOT NULL,
    queue             text NOT NULL,
    campaign          text,                   -- set for a dialer campaign's calls
    policy            text NOT NULL CHECK (policy IN ('all', 'on_demand')),
    started_at        timestamptz NOT NULL,
    ended_at          timestamptz,
    duration_seconds  double precision NOT NULL,   -- from the file itself
    size_bytes        bigint NOT NULL,
    sha256            text NOT NULL,
    format            text NOT NULL,
    store_key         text NOT NULL,
    -- Spans muted on request, as [start, end] seconds from the start of the file.
    paused_spans      jsonb NOT NULL DEFAULT '[]'::jsonb,
    stored_at         timestamptz NOT NULL,
    deleted_at        timestamptz,
    deleted_by        text
);
CREATE INDEX recordings_call ON recordings (call_id);
CREATE INDEX recordings_started ON recordings (started_at) WHERE deleted_at IS NULL;
CREATE INDEX recordings_agent ON recordings (agent_id, started_at);

-- Every listen, download, pause, resume, start, stop and deletion: who, what, when, range.
CREATE TABLE recording_audit (
    audit_id     text PRIMARY KEY,           -- made by the engine: a retried write is harmless
    at           timestamptz NOT NULL,
    principal    text NOT NULL,               -- a token's name, or 'retention'
    role         text NOT NULL,
    action       text NOT NULL,               -- listen download pause resume start stop delete
    name         text,                        -- the recording
    call_id      text,
    range_start  bigint,
    range_end    bigint,                      -- inclusive, as in Content-Range
    status       integer,                     -- the HTTP status answered, when it was a request
    detail       text NOT NULL DEFAULT ''
);
CREATE INDEX recording_audit_name ON recording_audit (name, at);
CREATE INDEX recording_audit_principal ON recording_audit (principal, at);

CREATE TABLE supervision_audit (
    audit_id     text PRIMARY KEY,
    session_id   text NOT NULL,
    at           timestamptz NOT NULL,
    principal    text NOT NULL,
    role         text NOT NULL,
    action       text NOT NULL,               -- start answered mode stop failed
    mode         text NOT NULL,               -- listen whisper barge
    call_id      text NOT NULL,
    agent_id     text NOT NULL,
    endpoint     text NOT NULL,               -- the supervisor's phone
    detail       text NOT NULL DEFAULT ''
);
CREATE INDEX supervision_audit_session ON supervision_audit (session_id, at);
CREATE INDEX supervision_audit_call ON supervision_audit (call_id);
