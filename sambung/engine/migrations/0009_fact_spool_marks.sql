-- How far each spool generation of the fact writer has been committed (engine/facts.py).
-- Every engine start opens a new generation and numbers its facts 1, 2, 3...; the batch that
-- writes a generation's facts moves its mark in the same transaction. A fact replayed from
-- the spool after a crash (committed, but not yet removed from the spool) is at or below the
-- mark and is skipped, so every fact lands exactly once, including the ones whose statements
-- would not be harmless twice (an array append, a counter). A row goes away once its
-- generation has left the spool.
CREATE TABLE fact_spool_marks (
    generation     text PRIMARY KEY,
    spool          text NOT NULL,          -- the spool file's name, for whoever reads this
    committed_seq  bigint NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
