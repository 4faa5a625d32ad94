-- A preview's hold on a record, apart from when the record is due and from a promised
-- callback's agent. Before, the hold was written over next_at and callback_agent: the record
-- stayed pinned to that agent after the hold ran out, and preview_dial could not tell a hold
-- from "nobody holds it", so an agent could dial any record early.
ALTER TABLE dial_records ADD COLUMN held_by text;
ALTER TABLE dial_records ADD COLUMN held_until timestamptz;
CREATE INDEX dial_records_held ON dial_records (held_until) WHERE held_until IS NOT NULL;
