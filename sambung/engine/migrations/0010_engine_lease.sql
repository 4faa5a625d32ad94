-- Which engine drives Asterisk (engine/lease.py), and which engines are alive.
-- One row per lease (today one: 'active'). ``token`` grows by one with every new holder: the
-- fencing token, so whatever an engine did under an older token can be told apart. Expiry is
-- in the database's clock, the one clock every engine shares.
CREATE TABLE engine_lease (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    token       bigint NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- Every running engine, active or standby, with its heartbeat: two engines with the same
-- instance id would write each other's calls and spool marks, so a second one is refused
-- while the first is alive.
CREATE TABLE engine_instances (
    instance_id text PRIMARY KEY,
    run_id      text NOT NULL,
    host        text NOT NULL,
    pid         integer NOT NULL,
    started_at  timestamptz NOT NULL,
    seen_at     timestamptz NOT NULL
);
