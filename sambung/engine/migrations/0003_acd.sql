-- The ACD's facts: agents and every change of their state, queue entries, the legs that rang
-- agents' phones (and callback customers), and the dispositions agents give calls.

-- Calls the ACD places itself (callbacks) and agents' feature-code calls are calls too.
ALTER TABLE calls DROP CONSTRAINT calls_direction_check;
ALTER TABLE calls ADD CONSTRAINT calls_direction_check
    CHECK (direction IN ('inbound', 'outbound', 'callback', 'agent_feature'));

CREATE TABLE agents (
    agent_id    text PRIMARY KEY,
    name        text NOT NULL,
    endpoint    text NOT NULL,
    team        text NOT NULL DEFAULT '',
    skills      jsonb NOT NULL DEFAULT '{}'::jsonb,   -- skill -> level 1..5
    queues      text[] NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL
);

-- One row per state change. (agent_id, engine_instance, seq) makes a retried write harmless.
CREATE TABLE agent_states (
    agent_id         text NOT NULL REFERENCES agents (agent_id),
    engine_instance  text NOT NULL,
    run_id           text NOT NULL,   -- seq restarts with each engine run
    seq              integer NOT NULL,
    at               timestamptz NOT NULL,
    state            text NOT NULL,   -- logged_out ready reserved ringing on_call on_hold wrap_up paused
    previous         text NOT NULL,
    reason           text NOT NULL DEFAULT '',
    call_id          text,
    source           text NOT NULL,   -- api phone routing call timer system
    PRIMARY KEY (agent_id, run_id, seq)
);
CREATE INDEX agent_states_at ON agent_states (agent_id, at);

CREATE TABLE queue_entries (
    entry_id        text PRIMARY KEY,
    call_id         text NOT NULL REFERENCES calls (call_id),
    queue           text NOT NULL,
    kind            text NOT NULL,          -- caller | callback | transfer | overflow
    priority        integer NOT NULL,
    -- When the caller first queued; kept through transfers and overflows (their place).
    first_enqueued_at timestamptz NOT NULL,
    enqueued_at     timestamptz NOT NULL,   -- when it joined this queue
    ended_at        timestamptz,
    -- answered, abandoned, overflowed, callback_requested, transferred, hung_up, lost
    outcome         text,
    wait_seconds    double precision,
    short_abandon   boolean NOT NULL DEFAULT false,
    agent_id        text,
    detail          text
);
CREATE INDEX queue_entries_queue ON queue_entries (queue, enqueued_at);
CREATE INDEX queue_entries_call ON queue_entries (call_id);

CREATE TABLE call_legs (
    leg_id        text PRIMARY KEY,
    call_id       text NOT NULL REFERENCES calls (call_id),
    entry_id      text,
    kind          text NOT NULL,            -- agent | customer (a callback's far end)
    agent_id      text,
    endpoint      text NOT NULL,
    created_at    timestamptz NOT NULL,
    answered_at   timestamptz,
    ended_at      timestamptz,
    -- answered, rona, busy, unavailable, failed, caller_left
    outcome       text,
    hangup_cause  integer,
    sip_code      integer,
    talk_seconds  double precision,
    hold_seconds  double precision
);
CREATE INDEX call_legs_call ON call_legs (call_id);
CREATE INDEX call_legs_agent ON call_legs (agent_id, created_at);

CREATE TABLE dispositions (
    call_id     text NOT NULL REFERENCES calls (call_id),
    agent_id    text NOT NULL,
    code        text NOT NULL,
    note        text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL,
    PRIMARY KEY (call_id, agent_id)
);
