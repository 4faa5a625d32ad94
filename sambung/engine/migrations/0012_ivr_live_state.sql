-- What an IVR session knows at the node its caller is at (ivr/resume.py): the node, the step
-- count, the language, the attributes (inputs, lookups; never a sensitive input's value) and
-- the names of what sensitive inputs collected. Written with each node the caller reaches,
-- so that another engine can resume the call there after a crash, a restart or a takeover;
-- cleared when the session ends. The same personal data as ``attributes``, for as long as
-- the caller is in the flow only.
ALTER TABLE ivr_sessions ADD COLUMN live_state jsonb;
