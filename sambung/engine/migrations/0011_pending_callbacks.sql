-- Callbacks a caller asked for and nobody has made yet (acd/service.py): the entry keeps its
-- place in the queue with no caller on the line, possibly held until the calling rules allow
-- a dial. Kept here so that an engine restart, a deploy or a takeover does not forget them:
-- the next engine puts each back in its queue at its place, with its attempts so far.
-- ``settled_at`` is set when the entry leaves its queue (made, failed, refused).
CREATE TABLE pending_callbacks (
    entry_id          text PRIMARY KEY,
    callback_id       text NOT NULL,     -- the id the callback's dials are numbered from
    queue             text NOT NULL,
    priority          integer NOT NULL,
    first_enqueued_at timestamptz NOT NULL,
    enqueued_at       timestamptz NOT NULL,
    caller_number     text NOT NULL,
    caller_name       text NOT NULL DEFAULT '',
    did               text NOT NULL DEFAULT '',
    language          text NOT NULL,
    not_before        timestamptz,       -- no dial before this (the rules, a retry)
    attempts          integer NOT NULL DEFAULT 0,
    noted_at          timestamptz NOT NULL,
    settled_at        timestamptz
);
CREATE INDEX pending_callbacks_open ON pending_callbacks (first_enqueued_at)
    WHERE settled_at IS NULL;
