-- Hourly rollups behind health.summary (src/health/rollup.rs): per user, metric table and kind,
-- the count, min, max and sum of each UTC hour with samples, in the kind's canonical unit, and
-- the change-feed seq through which they hold every change. Written and read only by
-- health.summary (SECURITY DEFINER); rebuilt from the samples whenever in doubt, so they are not
-- dumped: a restored database builds them again on first use.
CREATE TABLE health_rls.summary_hours (
    user_id uuid NOT NULL,
    relid   oid NOT NULL,
    kind    text NOT NULL,
    hour    timestamptz NOT NULL,
    n       bigint NOT NULL CHECK (n > 0),
    min     double precision NOT NULL,
    max     double precision NOT NULL,
    sum     double precision NOT NULL,
    PRIMARY KEY (user_id, relid, kind, hour)
);
REVOKE ALL ON health_rls.summary_hours FROM PUBLIC;
CREATE TABLE health_rls.summary_state (
    user_id     uuid NOT NULL,
    relid       oid NOT NULL,
    kind        text NOT NULL,
    through_seq bigint NOT NULL,   -- every change of the user's feed up to this seq is in the rollups
    feed        text NOT NULL,     -- the table's name, file and realtime triggers they were built against
    built_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, relid, kind)
);
REVOKE ALL ON health_rls.summary_state FROM PUBLIC;
