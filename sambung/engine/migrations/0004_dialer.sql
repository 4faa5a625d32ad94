-- The predictive dialer: campaigns, their records (debtors), every dial attempt, list imports,
-- do-not-call entries, payments, and dispositions with promise details.

ALTER TABLE calls DROP CONSTRAINT calls_direction_check;
ALTER TABLE calls ADD CONSTRAINT calls_direction_check
    CHECK (direction IN ('inbound', 'outbound', 'callback', 'agent_feature', 'dialer'));

CREATE TABLE campaigns (
    name        text PRIMARY KEY,
    mode        text NOT NULL,
    -- stopped: not dialling (the start state); running; paused (by a supervisor)
    state       text NOT NULL DEFAULT 'stopped' CHECK (state IN ('stopped', 'running', 'paused')),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE list_imports (
    import_id    bigserial PRIMARY KEY,
    campaign     text NOT NULL REFERENCES campaigns (name),
    source       text NOT NULL,                 -- file name or "api"
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    state        text NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    rows_read    integer NOT NULL DEFAULT 0,
    imported     integer NOT NULL DEFAULT 0,    -- records created
    updated      integer NOT NULL DEFAULT 0,    -- records that existed and were merged into
    merged       integer NOT NULL DEFAULT 0,    -- duplicate rows merged within the file
    rejected     integer NOT NULL DEFAULT 0,
    suppressed   integer NOT NULL DEFAULT 0,
    -- Every bad or suppressed row: [{"line": 7, "column": "phone1", "reason": ..., ...}]
    problems     jsonb NOT NULL DEFAULT '[]'::jsonb,
    error        text
);

CREATE TABLE dial_records (
    record_id      bigserial PRIMARY KEY,
    campaign       text NOT NULL REFERENCES campaigns (name),
    account_id     text NOT NULL,
    name           text NOT NULL,
    phones         text[] NOT NULL,               -- E.164, 1 to 3, in the order to try
    bad_phones     text[] NOT NULL DEFAULT '{}',  -- dropped: invalid, wrong party, DNC
    amount_due     numeric(18, 2) NOT NULL,
    due_date       date,
    days_past_due  integer NOT NULL,
    bucket         text NOT NULL,
    zone           text NOT NULL,                 -- IANA zone of the debtor
    zone_source    text NOT NULL,
    language       text NOT NULL,
    extra          jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- pending (never tried), scheduled (next_at), dialing, done, stopped (paid, DNC, no phone)
    state          text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'scheduled', 'dialing', 'done', 'stopped')),
    next_at        timestamptz,
    next_phone     integer NOT NULL DEFAULT 0,    -- index into phones of the next number to try
    callback_agent text,                          -- a callback promised by this agent
    attempts       integer NOT NULL DEFAULT 0,
    last_outcome   text,
    stop_reason    text,                          -- paid, dnc, no_phone, exhausted, disposition
    import_id      bigint REFERENCES list_imports (import_id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign, account_id)
);
CREATE INDEX dial_records_due ON dial_records (campaign, next_at NULLS FIRST, record_id)
    WHERE state IN ('pending', 'scheduled');
CREATE INDEX dial_records_account ON dial_records (account_id);

-- Written (with its calls row) before the originate: there is no untracked attempt.
CREATE TABLE dial_attempts (
    attempt_id      text PRIMARY KEY,             -- the channel id given to the originate
    campaign        text NOT NULL,
    record_id       bigint NOT NULL REFERENCES dial_records (record_id),
    account_id      text NOT NULL,
    phone           text NOT NULL,
    mode            text NOT NULL,
    created_at      timestamptz NOT NULL,
    answered_at     timestamptz,
    amd_status      text,                         -- HUMAN, MACHINE, NOTSURE, HANGUP
    amd_cause       text,
    live_at         timestamptz,                  -- when it was known to be a person
    connected_at    timestamptz,                  -- bridged to an agent
    agent_id        text,
    ended_at        timestamptz,
    -- connected, abandoned, machine, reminder, busy, no_answer, rejected, congestion,
    -- invalid_number, failed, cancelled
    outcome         text,
    hangup_cause    integer,
    sip_code        integer,
    connect_seconds double precision,             -- live answer to agent (or safe harbour)
    engine_instance text NOT NULL
);
CREATE INDEX dial_attempts_record ON dial_attempts (record_id, created_at);
CREATE INDEX dial_attempts_account ON dial_attempts (account_id, created_at);
CREATE INDEX dial_attempts_campaign ON dial_attempts (campaign, created_at);
CREATE INDEX dial_attempts_open ON dial_attempts (engine_instance) WHERE ended_at IS NULL;

CREATE TABLE dnc (
    kind      text NOT NULL CHECK (kind IN ('phone', 'account')),
    value     text NOT NULL,
    reason    text NOT NULL DEFAULT '',
    added_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value)
);

CREATE TABLE payments (
    payment_id  bigserial PRIMARY KEY,
    account_id  text NOT NULL,
    amount      numeric(18, 2) NOT NULL CHECK (amount > 0),
    paid_at     timestamptz NOT NULL,
    reference   text NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, reference)
);
CREATE INDEX payments_account ON payments (account_id, paid_at);

ALTER TABLE dispositions
    ADD COLUMN campaign     text,
    ADD COLUMN account_id   text,
    ADD COLUMN amount       numeric(18, 2),
    ADD COLUMN promise_date date,
    ADD COLUMN callback_at  timestamptz,
    ADD COLUMN right_party  boolean NOT NULL DEFAULT false;
CREATE INDEX dispositions_account ON dispositions (account_id, at);
