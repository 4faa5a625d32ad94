-- The IVR's facts: one session per call that entered a flow, and every step it took.

CREATE TABLE ivr_sessions (
    call_id        text PRIMARY KEY REFERENCES calls (call_id),
    flow           text NOT NULL,
    flow_version   text NOT NULL,           -- content hash: which version of the file ran
    started_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    language       text,
    -- completed (ended by the flow: hang-up node, after-hours...), transferred, abandoned
    -- (the caller hung up in the IVR), failed (engine error), lost (Asterisk restart...)
    outcome        text,
    end_reason     text,
    last_node      text,
    attributes     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX ivr_sessions_flow_started ON ivr_sessions (flow, started_at);

CREATE TABLE ivr_steps (
    call_id   text NOT NULL REFERENCES calls (call_id),
    seq       integer NOT NULL,
    at        timestamptz NOT NULL,
    node      text NOT NULL,
    kind      text NOT NULL,      -- enter, option, invalid, no_input, input, branch, lookup_ok...
    choice    text,
    PRIMARY KEY (call_id, seq)
);
