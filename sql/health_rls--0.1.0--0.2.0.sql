-- health_rls 0.1.0 -> 0.2.0, run by ALTER EXTENSION health_rls UPDATE.
-- Every schema change of 0.2.0 lands here; tests/lifecycle/upgrade.sh checks that a 0.1.0
-- database updated with this script has exactly the schema of a fresh 0.2.0 install.
\echo Use "ALTER EXTENSION health_rls UPDATE" to load this file. \quit

-- enable_realtime takes the key columns to announce (default: the primary key), so realtime no
-- longer knows metric tables. Triggers created by 0.1.0 keep their arguments and keep working.
DROP FUNCTION health_rls.enable_realtime(regclass, text, text);
CREATE FUNCTION health_rls.enable_realtime(
    "tbl" regclass,
    "owner_column" TEXT DEFAULT 'user_id',
    "payload" TEXT DEFAULT 'keys',
    "key_columns" TEXT[] DEFAULT NULL
) RETURNS SETOF TEXT
VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'enable_realtime_wrapper';

-- health.rejected_samples gets its owner policies from the generator, like every owner table.
DROP POLICY rejected_samples_owner_select ON health.rejected_samples;
DROP POLICY rejected_samples_owner_insert ON health.rejected_samples;
SELECT pg_catalog.count(*) FROM health_rls.enable_owner_rls('health.rejected_samples', 'user_id', '{select,insert}', '{authenticated}');

-- Real wearable payloads (docs/ingest.md) -------------------------------------------------------
-- Health Connect names a blood-pressure half by its record's field.
UPDATE health.metric_kinds SET health_connect = 'BloodPressureRecord.systolic' WHERE code = 'blood_pressure_systolic' AND seeded;
UPDATE health.metric_kinds SET health_connect = 'BloodPressureRecord.diastolic' WHERE code = 'blood_pressure_diastolic' AND seeded;

-- The new kinds and health.unit_aliases: the statements of sql/vocabulary.sql.
-- Ranges are physiological plausibility, as for the first kinds (see health_catalog.sql).
INSERT INTO health.metric_kinds
    (code, display, unit, min_value, max_value, molar_mass, loinc, healthkit, health_connect, seeded)
VALUES
    -- A heart rate averaged over walks: same physical bounds as heart_rate.
    ('walking_heart_rate_average', 'Walking heart rate average', '/min', 20, 300, NULL,
     NULL, 'HKQuantityTypeIdentifierWalkingHeartRateAverage', NULL, true),
    -- 5–100 mL/min/kg: severe heart failure is ~10, the highest values measured in endurance
    -- athletes ~97 (Health Connect's Vo2MaxRecord admits 0–100).
    ('vo2_max', 'VO2 max', 'mL/min/kg', 5, 100, NULL,
     NULL, 'HKQuantityTypeIdentifierVO2Max', 'Vo2MaxRecord', true),
    -- 1–80 %: essential fat is ~2–5 % (men) and ~10 % (women); the heaviest people measured
    -- reach ~70 %. HealthKit sends a 0–1 fraction with unit %, read as such.
    ('body_fat_percentage', 'Body fat percentage', '%', 1, 80, NULL,
     '41982-0', 'HKQuantityTypeIdentifierBodyFatPercentage', 'BodyFatRecord', true),
    -- Per record, like active_energy (Health Connect's BasalMetabolicRateRecord is a rate, not this).
    ('basal_energy', 'Basal energy burned', 'kcal', 0, 1000000, NULL,
     NULL, 'HKQuantityTypeIdentifierBasalEnergyBurned', NULL, true),
    -- Per record: Health Connect's FloorsClimbedRecord admits 0–1,000,000.
    ('flights_climbed', 'Flights climbed', '{flights}', 0, 1000000, NULL,
     '100304-5', 'HKQuantityTypeIdentifierFlightsClimbed', 'FloorsClimbedRecord', true),
    -- Sleep stages: HealthKit's SleepAnalysis category values (in bed, asleep, awake, and the
    -- core/deep/REM stages of iOS 16+), each stored as the length of its interval, 0–24 h per
    -- record like sleep_duration. In-bed and asleep intervals overlap: do not add them up.
    ('sleep_in_bed', 'Sleep: in bed', 'h', 0, 24, NULL, NULL, NULL, NULL, true),
    ('sleep_asleep', 'Sleep: asleep (stage unspecified)', 'h', 0, 24, NULL, NULL, NULL, NULL, true),
    ('sleep_awake', 'Sleep: awake', 'h', 0, 24, NULL, NULL, NULL, NULL, true),
    ('sleep_core', 'Sleep: core (light) sleep', 'h', 0, 24, NULL, NULL, NULL, NULL, true),
    ('sleep_deep', 'Sleep: deep sleep', 'h', 0, 24, NULL, NULL, NULL, NULL, true),
    ('sleep_rem', 'Sleep: REM sleep', 'h', 0, 24, NULL, NULL, NULL, NULL, true);

-- How each platform spells units. `unit` NULL means "the kind's own canonical unit": HealthKit's
-- `count` is steps for StepCount, flights for FlightsClimbed and kg/m2 for BodyMassIndex.
-- platform 'healthkit' / 'health_connect' applies to kinds named by that platform and is tried
-- before UCUM (HealthKit's % is a 0–1 fraction); 'any' applies to every sample, after UCUM.
CREATE TABLE health.unit_aliases (
    alias    text NOT NULL CHECK (alias <> ''),
    platform text NOT NULL DEFAULT 'any' CHECK (platform IN ('any', 'healthkit', 'health_connect')),
    unit     text CHECK (unit IS NULL OR health.is_unit(unit)),
    seeded   boolean NOT NULL DEFAULT false,           -- true only for the rows below
    PRIMARY KEY (alias, platform)
);
COMMENT ON TABLE health.unit_aliases IS
    'Platform unit spellings (HealthKit, Health Connect, common aliases) -> UCUM; unit NULL = the kind''s canonical unit. Add your own rows (seeded = false); they survive pg_dump/restore.';
INSERT INTO health.unit_aliases (alias, platform, unit, seeded) VALUES
    ('count/min', 'healthkit', '/min', true),
    ('count/s', 'healthkit', '/s', true),
    ('count', 'healthkit', NULL, true),
    ('%', 'healthkit', '1', true),
    ('degC', 'healthkit', 'Cel', true),
    ('degF', 'healthkit', '[degF]', true),
    ('lb', 'healthkit', '[lb_av]', true),
    ('oz', 'healthkit', '[oz_av]', true),
    ('st', 'healthkit', '[stone_av]', true),
    ('in', 'healthkit', '[in_i]', true),
    ('ft', 'healthkit', '[ft_i]', true),
    ('mi', 'healthkit', '[mi_i]', true),
    ('Cal', 'healthkit', 'kcal', true),
    ('mmHg', 'healthkit', 'mm[Hg]', true),
    ('mmol<180.15588000005408>/L', 'healthkit', 'mmol/L', true),
    ('mmol<180.1558800000541>/L', 'healthkit', 'mmol/L', true),
    ('hr', 'healthkit', 'h', true),
    ('mL/min·kg', 'healthkit', 'mL/min/kg', true),
    ('kilograms', 'health_connect', 'kg', true),
    ('grams', 'health_connect', 'g', true),
    ('pounds', 'health_connect', '[lb_av]', true),
    ('ounces', 'health_connect', '[oz_av]', true),
    ('meters', 'health_connect', 'm', true),
    ('kilometers', 'health_connect', 'km', true),
    ('miles', 'health_connect', '[mi_i]', true),
    ('inches', 'health_connect', '[in_i]', true),
    ('feet', 'health_connect', '[ft_i]', true),
    ('kilocalories', 'health_connect', 'kcal', true),
    ('calories', 'health_connect', 'cal', true),
    ('kilojoules', 'health_connect', 'kJ', true),
    ('celsius', 'health_connect', 'Cel', true),
    ('fahrenheit', 'health_connect', '[degF]', true),
    ('millimetersOfMercury', 'health_connect', 'mm[Hg]', true),
    ('millimolesPerLiter', 'health_connect', 'mmol/L', true),
    ('milligramsPerDeciliter', 'health_connect', 'mg/dL', true),
    ('percent', 'health_connect', '%', true),
    ('beatsPerMinute', 'health_connect', '/min', true),
    ('breathsPerMinute', 'health_connect', '/min', true),
    ('count', 'health_connect', NULL, true),
    ('milliseconds', 'health_connect', 'ms', true),
    ('seconds', 'health_connect', 's', true),
    ('minutes', 'health_connect', 'min', true),
    ('hours', 'health_connect', 'h', true),
    ('millilitersPerMinuteKilogram', 'health_connect', 'mL/min/kg', true),
    ('bpm', 'any', '/min', true),
    ('beats/min', 'any', '/min', true),
    ('breaths/min', 'any', '/min', true),
    ('lbs', 'any', '[lb_av]', true),
    ('mmHg', 'any', 'mm[Hg]', true);
SELECT pg_catalog.pg_extension_config_dump('health.unit_aliases', 'WHERE NOT seeded');
GRANT SELECT ON health.unit_aliases TO PUBLIC;   -- reference data, read by ingest as the caller
CREATE TRIGGER unit_aliases_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON health.unit_aliases
    FOR EACH STATEMENT EXECUTE FUNCTION health.metric_kinds_changed();

COMMENT ON FUNCTION health.ingest(regclass, jsonb) IS
    'Batch write as the caller (RLS applies): one row per element, status inserted / updated / deleted / duplicate / rejected; id = the table row (the systolic row of a pair) or the health.rejected_samples row (rejected). Accepts catalog codes, HealthKit and Health Connect names and units, intervals, sync versions, deletions and blood-pressure pairs (docs/ingest.md).';

-- Standard tables made by 0.1.0 get the interval, time zone, sync and pairing columns.
CREATE FUNCTION health."_upgrade_metric_table"(
    "tbl" regclass
) RETURNS void
STRICT VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', '_upgrade_metric_table_wrapper';
REVOKE ALL ON FUNCTION health._upgrade_metric_table(regclass) FROM PUBLIC;
DO $$
DECLARE t regclass;
BEGIN
    FOR t IN SELECT c.oid::regclass FROM pg_catalog.pg_class c
              WHERE c.relkind = 'r'
                AND pg_catalog.obj_description(c.oid, 'pg_class') LIKE 'Health samples (health.create_metric_table)%'
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                                 WHERE a.attrelid = c.oid AND a.attname = 'sync_id' AND NOT a.attisdropped)
    LOOP
        PERFORM health._upgrade_metric_table(t);
    END LOOP;
END $$;

-- Sessions that last (docs/sql-reference.md, "Sessions", "Keys") --------------------------------
-- Key statuses: 0.1.0 signed with the newest active oct key; every other active key verified.
ALTER TABLE auth.keys ADD COLUMN status text;
UPDATE auth.keys SET status = CASE
    WHEN revoked_at IS NOT NULL THEN 'revoked'
    WHEN kid = (SELECT k.kid FROM auth.keys k WHERE k.kty = 'oct' AND k.revoked_at IS NULL
                 ORDER BY k.created_at DESC, k.kid LIMIT 1) THEN 'current'
    ELSE 'previous' END;
ALTER TABLE auth.keys ALTER COLUMN status SET NOT NULL;
ALTER TABLE auth.keys ADD CHECK (status IN ('standby', 'current', 'previous', 'revoked'));
CREATE UNIQUE INDEX keys_one_current ON auth.keys ((true)) WHERE status = 'current';

ALTER TABLE auth.sessions ADD COLUMN refreshed_at timestamptz;

CREATE TABLE auth.refresh_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES auth.sessions (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    parent_id   bigint REFERENCES auth.refresh_tokens (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_session_id_idx ON auth.refresh_tokens (session_id);
REVOKE ALL ON auth.refresh_tokens FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('auth.refresh_tokens', '');
SELECT pg_catalog.pg_extension_config_dump('auth.refresh_tokens_id_seq', '');

DROP FUNCTION auth.add_key(jsonb);
CREATE FUNCTION auth."add_key"(
    "jwk" jsonb,
    "status" TEXT DEFAULT NULL
) RETURNS TEXT
VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'add_key_wrapper';
REVOKE ALL ON FUNCTION auth.add_key(jsonb, text) FROM PUBLIC;
CREATE FUNCTION auth."rotate_key"() RETURNS TEXT
STRICT VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'rotate_key_wrapper';
REVOKE ALL ON FUNCTION auth.rotate_key() FROM PUBLIC;
CREATE FUNCTION auth."jwks"() RETURNS jsonb
STRICT STABLE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'jwks_wrapper';
CREATE FUNCTION auth."start_session"(
    "email" TEXT,
    "password" TEXT
) RETURNS jsonb
VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'start_session_wrapper';
CREATE FUNCTION auth."refresh_session"(
    "refresh_token" TEXT
) RETURNS jsonb
VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'refresh_session_wrapper';
CREATE FUNCTION auth."sign_out_everywhere"() RETURNS void
STRICT VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'sign_out_everywhere_wrapper';

-- Standard data out: FHIR R4, the owner's copy and erasure (docs/export.md) ------------------------
CREATE FUNCTION health."fhir_observations"(
    "from" timestamp with time zone DEFAULT NULL,
    "until" timestamp with time zone DEFAULT NULL,
    "kinds" TEXT[] DEFAULT NULL
) RETURNS jsonb
STABLE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'fhir_observations_wrapper';
CREATE FUNCTION health."fhir_observations_ndjson"(
    "from" timestamp with time zone DEFAULT NULL,
    "until" timestamp with time zone DEFAULT NULL,
    "kinds" TEXT[] DEFAULT NULL
) RETURNS SETOF jsonb
STABLE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'fhir_observations_ndjson_wrapper';
CREATE FUNCTION health."export_my_data"() RETURNS jsonb
STRICT STABLE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'export_my_data_wrapper';
CREATE FUNCTION health."erase_my_data"(
    "confirm" TEXT
) RETURNS jsonb
VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'erase_my_data_wrapper';

-- Realtime that loses nothing (docs/realtime.md, "Change feed") ---------------------------------
CREATE FUNCTION health_rls."changes_since"(
    "after_seq" bigint,
    "max_rows" INT DEFAULT 1000
) RETURNS TABLE (
    "seq" bigint,
    "tbl" TEXT,
    "op" TEXT,
    "keys" jsonb,
    "at" timestamp with time zone
)
STRICT STABLE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'changes_since_wrapper';
CREATE FUNCTION health_rls."prune_changes"() RETURNS bigint
STRICT VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'prune_changes_wrapper';
-- The change feed (src/realtime/changelog.rs): one counter row per user, whose lock orders a
-- user's concurrent writers by commit, and the changes themselves, readable by their owner.
CREATE TABLE health_rls.change_counters (
    user_id        uuid PRIMARY KEY,
    last_seq       bigint NOT NULL DEFAULT 0,
    pruned_through bigint NOT NULL DEFAULT 0   -- changes up to this seq were removed by retention
);
REVOKE ALL ON health_rls.change_counters FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('health_rls.change_counters', '');
CREATE TABLE health_rls.changes (
    user_id uuid NOT NULL,
    seq     bigint NOT NULL,
    tbl     text NOT NULL,
    op      text NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE')),
    keys    jsonb NOT NULL,          -- what the notification carried for the row (a tombstone for DELETE)
    at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, seq)
);
CREATE INDEX changes_at_idx ON health_rls.changes (at);
REVOKE ALL ON health_rls.changes FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('health_rls.changes', '');
SELECT auth.create_roles();   -- the policy names authenticated (create_roles is idempotent)
SELECT pg_catalog.count(*) FROM health_rls.enable_owner_rls('health_rls.changes', 'user_id', '{select}', '{authenticated}');
REVOKE ALL ON FUNCTION health_rls.prune_changes() FROM PUBLIC;

-- Sharing with consent, and a log of who looked (docs/sharing.md) ---------------------------------
CREATE FUNCTION health."share"(
	"grantee" uuid,
	"kinds" TEXT[],
	"data_from" timestamp with time zone DEFAULT NULL,
	"data_until" timestamp with time zone DEFAULT NULL,
	"expires_at" timestamp with time zone DEFAULT NULL
) RETURNS uuid
VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'share_wrapper';
CREATE FUNCTION health."revoke_share"(
	"share_id" uuid
) RETURNS void
VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'revoke_share_wrapper';
CREATE FUNCTION health."shares"() RETURNS TABLE (
	"share" jsonb
)
STRICT STABLE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'shares_wrapper';
CREATE FUNCTION health."shared_samples"(
	"owner" uuid,
	"kind" TEXT DEFAULT NULL,
	"from" timestamp with time zone DEFAULT NULL,
	"until" timestamp with time zone DEFAULT NULL
) RETURNS TABLE (
	"id" bigint,
	"kind" TEXT,
	"value" double precision,
	"unit" TEXT,
	"recorded_at" timestamp with time zone,
	"ended_at" timestamp with time zone,
	"source" TEXT
)
VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'shared_samples_wrapper';
CREATE FUNCTION health."my_access_log"() RETURNS TABLE (
	"at" timestamp with time zone,
	"grantee_id" uuid,
	"grantee_email" TEXT,
	"share_ids" uuid[],
	"kinds" TEXT[],
	"row_count" INT
)
STRICT STABLE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'my_access_log_wrapper';
CREATE TABLE health.shares (
    id          uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    grantee_id  uuid NOT NULL CHECK (grantee_id <> owner_id),
    kinds       text[] NOT NULL CHECK (cardinality(kinds) > 0),
    data_from   timestamptz,
    data_until  timestamptz,
    expires_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CHECK (data_from <= data_until)
);
CREATE INDEX shares_owner_id_idx ON health.shares (owner_id);
CREATE INDEX shares_grantee_id_idx ON health.shares (grantee_id);
REVOKE ALL ON health.shares FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('health.shares', '');

CREATE TABLE health.access_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    owner_id    uuid NOT NULL,
    grantee_id  uuid NOT NULL,
    share_ids   uuid[] NOT NULL,
    kinds       text[] NOT NULL,
    row_count   integer NOT NULL
);
CREATE INDEX access_log_owner_id_at_idx ON health.access_log (owner_id, at DESC);
REVOKE ALL ON health.access_log FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('health.access_log', '');
SELECT pg_catalog.pg_extension_config_dump('health.access_log_id_seq', '');

-- Readable through RLS too: an owner sees the shares they gave, a grantee those they received
-- (and the access log of their own data), nobody anything else; nobody writes them directly.
ALTER TABLE health.shares ENABLE ROW LEVEL SECURITY;
ALTER TABLE health.shares FORCE ROW LEVEL SECURITY;
CREATE POLICY shares_owner_or_grantee ON health.shares FOR SELECT TO authenticated
    USING ((SELECT auth.uid()) = owner_id OR (SELECT auth.uid()) = grantee_id);
GRANT SELECT ON health.shares TO authenticated;
ALTER TABLE health.access_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE health.access_log FORCE ROW LEVEL SECURITY;
CREATE POLICY access_log_owner ON health.access_log FOR SELECT TO authenticated
    USING ((SELECT auth.uid()) = owner_id);
GRANT SELECT ON health.access_log TO authenticated;

-- Speed: identity functions evaluated once per execution (src/pg/initplan.rs) ----------------
-- The identity functions are evaluated once per execution, not once per row, even in a policy
-- written without `(select ...)` around them (src/pg/initplan.rs).
CREATE FUNCTION health_rls."_once_per_execution"("request" internal) RETURNS internal
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_once_per_execution_wrapper';
REVOKE ALL ON FUNCTION health_rls._once_per_execution(internal) FROM PUBLIC;
ALTER FUNCTION auth.uid() SUPPORT health_rls._once_per_execution;
ALTER FUNCTION auth.jwt() SUPPORT health_rls._once_per_execution;
ALTER FUNCTION auth.role() SUPPORT health_rls._once_per_execution;
ALTER FUNCTION auth.email() SUPPORT health_rls._once_per_execution;

-- Standard tables lose 0.1.0's foreign key on kind (health._upgrade_metric_table above drops it);
-- the validation trigger checks kinds, and this guard refuses deleting kinds in use.
-- Deleting (or renaming) a kind that samples still use is refused, as a foreign key would: the
-- standard tables have none (the validation trigger checks kinds against the cached catalog,
-- src/health/table.rs says why). Every table with the validation trigger is checked under a SHARE
-- lock, so no insert of that kind can slip in until this transaction ends; the inserts after it
-- see the new catalog. Runs as the extension owner: it must see every user's rows.
CREATE FUNCTION health.refuse_deleting_kinds_in_use() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    t record;
    in_use boolean;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.code = OLD.code THEN
        RETURN NEW;
    END IF;
    FOR t IN SELECT g.tgrelid::regclass AS tbl,
                    CASE WHEN g.tgnargs = 3 THEN split_part(encode(g.tgargs, 'escape'), '\000', 1) ELSE 'kind' END AS kind_column
               FROM pg_trigger g
              WHERE g.tgfoid = 'health.normalize_sample()'::regprocedure
              ORDER BY g.tgrelid
    LOOP
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', t.tbl);
        IF TG_OP = 'TRUNCATE' THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', t.tbl) INTO in_use;
        ELSE
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE %I = $1)', t.tbl, t.kind_column) INTO in_use USING OLD.code;
        END IF;
        IF in_use THEN
            RAISE foreign_key_violation USING
                MESSAGE = CASE WHEN TG_OP = 'TRUNCATE'
                    THEN format('cannot truncate health.metric_kinds: table %s has samples', t.tbl)
                    ELSE format('kind %s is still used by samples in table %s', OLD.code, t.tbl) END,
                HINT = 'Delete or convert those samples first.';
        END IF;
    END LOOP;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
REVOKE ALL ON FUNCTION health.refuse_deleting_kinds_in_use() FROM PUBLIC;
CREATE TRIGGER refuse_deleting_kinds_in_use BEFORE DELETE OR UPDATE OF code ON health.metric_kinds
    FOR EACH ROW EXECUTE FUNCTION health.refuse_deleting_kinds_in_use();
CREATE TRIGGER refuse_truncating_kinds_in_use BEFORE TRUNCATE ON health.metric_kinds
    FOR EACH STATEMENT EXECUTE FUNCTION health.refuse_deleting_kinds_in_use();
