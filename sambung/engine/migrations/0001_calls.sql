-- One row per call leg the engine handled. Written before anything else happens to the call,
-- closed exactly once (ended_at set) by the call task or by reconciliation.
CREATE TABLE calls (
    call_id           text PRIMARY KEY,          -- Asterisk channel id of the call's main leg
    direction         text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    channel_name      text NOT NULL,
    did               text NOT NULL,
    caller_number     text NOT NULL,
    caller_name       text NOT NULL DEFAULT '',
    hotline           text,                       -- NULL when the DID matched no hotline
    asterisk_id       text NOT NULL DEFAULT '',
    engine_instance   text NOT NULL,
    started_at        timestamptz NOT NULL,
    answered_at       timestamptz,
    ended_at          timestamptz,
    end_reason        text,                       -- our words: caller_hangup, completed, ...
    hangup_cause      integer,                    -- Q.850 cause from Asterisk
    hangup_cause_text text,
    sip_code          integer,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (ended_at IS NULL OR end_reason IS NOT NULL)
);

-- Reconciliation looks for the calls an engine instance left open.
CREATE INDEX calls_open_by_instance ON calls (engine_instance) WHERE ended_at IS NULL;
CREATE INDEX calls_started_at ON calls (started_at);
