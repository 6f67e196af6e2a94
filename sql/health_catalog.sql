-- Health metrics (docs/sql-reference.md, "health"): the kind catalog, typed domains and the store of rejected
-- samples. Units are UCUM codes (src/health/units.rs); health.normalize and the trigger
-- health.normalize_sample read this catalog through a per-backend cache that the trigger
-- below invalidates on every change.

CREATE TABLE health.metric_kinds (
    code           text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]*$'),
    display        text NOT NULL,
    unit           text NOT NULL CHECK (health.is_unit(unit)),   -- canonical UCUM unit: values are stored in it
    min_value      double precision,                             -- inclusive, in unit; NULL = unbounded
    max_value      double precision,
    molar_mass     double precision CHECK (molar_mass > 0),      -- g/mol, lets mg/dL ↔ mmol/L convert
    loinc          text,
    healthkit      text,                                         -- HKQuantityTypeIdentifier… / HKCategoryTypeIdentifier…
    health_connect text,                                         -- androidx.health.connect record type
    seeded         boolean NOT NULL DEFAULT false,               -- true only for the rows below
    -- How a page shows a value of the canonical unit: the unit as people write it ('bpm', '°C';
    -- NULL: show the canonical unit) and how many decimals it deserves (NULL: 2).
    display_unit      text CHECK (display_unit <> ''),
    display_precision smallint CHECK (display_precision BETWEEN 0 AND 6),
    CHECK (min_value <= max_value)
);
COMMENT ON TABLE health.metric_kinds IS
    'Health metric kinds: canonical UCUM unit and physiologically plausible range. Add your own rows (seeded = false); they survive pg_dump/restore.';

-- Ranges are PHYSIOLOGICAL PLAUSIBILITY (what no living body produces, or no instrument can
-- report), never "normal" ranges: a value outside them is a device or unit error, a value
-- inside them may still be a medical emergency that must be recorded. Where a published limit
-- (Health Connect, the MIMIC ICU outlier filters) is tighter than reality we are wider.
-- Cumulative kinds (steps, distance, energy) are per record of unknown duration: we use Health
-- Connect's per-record limits so that nothing a phone accepted is refused here.
INSERT INTO health.metric_kinds
    (code, display, unit, min_value, max_value, molar_mass, loinc, healthkit, health_connect, seeded)
VALUES
    -- 20–300: escape rhythms of complete heart block go down to ~20/min (below that no one stays
    -- conscious); Health Connect caps at 300, MIMIC's filter too. Reports above 300 are single case
    -- reports (pre-excited AF) no optical wearable resolves.
    ('heart_rate', 'Heart rate', '/min', 20, 300, NULL,
     '8867-4', 'HKQuantityTypeIdentifierHeartRate', 'HeartRateRecord', true),
    -- A resting rate is a heart rate: same physical bounds (a neonate in SVT rests at 280).
    ('resting_heart_rate', 'Resting heart rate', '/min', 20, 300, NULL,
     '40443-4', 'HKQuantityTypeIdentifierRestingHeartRate', 'RestingHeartRateRecord', true),
    -- SDNN (Apple). 0: a fixed-rate paced heart has ~no variability. 500 ms: 24-h SDNN of fit young
    -- adults reaches ~250 ms; 500 would need beat-to-beat swings of half a second. Not RMSSD
    -- (Android's HRV): a different measure, a different kind, never converted.
    ('heart_rate_variability_sdnn', 'Heart rate variability (SDNN)', 'ms', 0, 500, NULL,
     '80404-7', 'HKQuantityTypeIdentifierHeartRateVariabilitySDNN', NULL, true),
    -- Per record: Health Connect 1–1,000,000; 0 admitted for an empty interval.
    ('steps', 'Step count', '{steps}', 0, 1000000, NULL,
     '55423-8', 'HKQuantityTypeIdentifierStepCount', 'StepsRecord', true),
    -- Per record: Health Connect 0–1,000,000 m.
    ('distance', 'Distance walked or run', 'm', 0, 1000000, NULL,
     '55430-3', 'HKQuantityTypeIdentifierDistanceWalkingRunning', 'DistanceRecord', true),
    -- Per record: Health Connect 0–1,000,000 kcal.
    ('active_energy', 'Active energy burned', 'kcal', 0, 1000000, NULL,
     '41981-2', 'HKQuantityTypeIdentifierActiveEnergyBurned', 'ActiveCaloriesBurnedRecord', true),
    -- 20–100 %. The lowest arterial saturations measured in conscious people are ~34 % (Everest
    -- summit); below 20 % a reading is an artefact, or a HealthKit fraction (0.97) sent with '%'
    -- instead of '1' — exactly the error this bound catches. Send fractions with unit '1'.
    ('oxygen_saturation', 'Oxygen saturation (SpO2)', '%', 20, 100, NULL,
     '2708-6', 'HKQuantityTypeIdentifierOxygenSaturation', 'OxygenSaturationRecord', true),
    -- 1–150/min: opioid depression goes down to 1–4 breaths/min; newborns in distress exceed 100.
    -- (Health Connect admits up to 1000, MIMIC filters at 70 — too tight for infants.)
    ('respiratory_rate', 'Respiratory rate', '/min', 1, 150, NULL,
     '9279-1', 'HKQuantityTypeIdentifierRespiratoryRate', 'RespiratoryRateRecord', true),
    -- 10–50 Cel (MIMIC's filter): survivors of accidental hypothermia were measured at 13–14 °C, of
    -- heat stroke at 46.5 °C. Catches a Fahrenheit reading sent as Cel (98.6) and Cel sent as
    -- [degF] (37 [degF] = 2.8 Cel).
    ('body_temperature', 'Body temperature', 'Cel', 10, 50, NULL,
     '8310-5', 'HKQuantityTypeIdentifierBodyTemperature', 'BodyTemperatureRecord', true),
    -- 0.2–700 kg: surviving preterm newborns from ~0.21 kg; the heaviest person recorded ~635 kg.
    ('body_weight', 'Body weight', 'kg', 0.2, 700, NULL,
     '29463-7', 'HKQuantityTypeIdentifierBodyMass', 'WeightRecord', true),
    -- 20–280 cm: preterm newborns from ~20 cm; the tallest person recorded 272 cm.
    ('body_height', 'Body height', 'cm', 20, 280, NULL,
     '8302-2', 'HKQuantityTypeIdentifierHeight', 'HeightRecord', true),
    -- 5–200 kg/m2 (proposal): severe anorexia reaches ~7–9; 635 kg at 1.85 m is ~186.
    ('body_mass_index', 'Body mass index', 'kg/m2', 5, 200, NULL,
     '39156-5', 'HKQuantityTypeIdentifierBodyMassIndex', NULL, true),
    -- 10–500 mm[Hg]. NOT Health Connect's documented 200: a hypertensive crisis (250) must be
    -- stored. Intra-arterial peaks of 480 mm[Hg] were measured during maximal leg presses
    -- (MacDougall 1985); below ~10 there is no measurable pulse.
    ('blood_pressure_systolic', 'Systolic blood pressure', 'mm[Hg]', 10, 500, NULL,
     '8480-6', 'HKQuantityTypeIdentifierBloodPressureSystolic', 'BloodPressureRecord.systolic', true),
    -- 0–350 mm[Hg]: Korotkoff sounds heard down to 0 are recorded as diastolic 0 (aortic
    -- regurgitation, pregnancy, children); 350 was the intra-arterial peak of the same study.
    ('blood_pressure_diastolic', 'Diastolic blood pressure', 'mm[Hg]', 0, 350, NULL,
     '8462-4', 'HKQuantityTypeIdentifierBloodPressureDiastolic', 'BloodPressureRecord.diastolic', true),
    -- Canonical mmol/L (SI; what Health Connect stores and most of the world reads). mg/dL is
    -- converted with glucose's molar mass 180.16 g/mol (1 mmol/L = 18.016 mg/dL). LOINC 15074-8 is
    -- the moles/volume code; 2339-0 is its mass/volume (mg/dL) twin. 0.1–150 mmol/L: lab values of
    -- a few tenths occur in severe hypoglycaemia; the highest survived is ~147 mmol/L (2656 mg/dL).
    -- (Health Connect caps at 50, which real hyperosmolar states exceed.)
    ('blood_glucose', 'Blood glucose', 'mmol/L', 0.1, 150, 180.16,
     '15074-8', 'HKQuantityTypeIdentifierBloodGlucose', 'BloodGlucoseRecord', true),
    -- 0–24 h per record (proposal): a sleep record longer than a day is a clock or merge error.
    ('sleep_duration', 'Sleep duration', 'h', 0, 24, NULL,
     '93832-4', 'HKCategoryTypeIdentifierSleepAnalysis', 'SleepSessionRecord', true);

-- How people read the seeded kinds (docs/dashboard.md, "Units"): the unit in their words, and no
-- more decimals than the measurement carries.
UPDATE health.metric_kinds k SET display_unit = v.display_unit, display_precision = v.display_precision
  FROM (VALUES ('heart_rate', 'bpm', 0), ('resting_heart_rate', 'bpm', 0),
               ('heart_rate_variability_sdnn', 'ms', 0), ('steps', 'steps', 0), ('distance', 'm', 0),
               ('active_energy', 'kcal', 0), ('oxygen_saturation', '%', 0),
               ('respiratory_rate', 'breaths/min', 0), ('body_temperature', '°C', 1),
               ('body_weight', 'kg', 1), ('body_height', 'cm', 0), ('body_mass_index', 'kg/m²', 1),
               ('blood_pressure_systolic', 'mmHg', 0), ('blood_pressure_diastolic', 'mmHg', 0),
               ('blood_glucose', 'mmol/L', 1), ('sleep_duration', 'h', 1))
       AS v (code, display_unit, display_precision)
 WHERE k.code = v.code AND k.seeded;

-- pg_dump: the extension script recreates the seeded rows; only the DBA's own rows are dumped
-- (and restored) as data, so a restore neither loses them nor duplicates the seed.
SELECT pg_catalog.pg_extension_config_dump('health.metric_kinds', 'WHERE NOT seeded');
GRANT SELECT ON health.metric_kinds TO PUBLIC;   -- reference data, read by validation as the caller
GRANT REFERENCES (code) ON health.metric_kinds TO PUBLIC;   -- so a non-superuser DBA can create metric tables

CREATE TRIGGER metric_kinds_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON health.metric_kinds
    FOR EACH STATEMENT EXECUTE FUNCTION health.metric_kinds_changed();

-- Domains for typed columns: plain double precision / bigint underneath, so every driver sees an
-- ordinary number (not numeric, which node-postgres returns as a string). Bounds are those of
-- the seeded kinds; NaN fails the check (it sorts above every number in Postgres).
CREATE DOMAIN health.heart_rate_bpm AS double precision CHECK (VALUE BETWEEN 20 AND 300);
CREATE DOMAIN health.step_count AS bigint CHECK (VALUE BETWEEN 0 AND 1000000);
CREATE DOMAIN health.spo2_percent AS double precision CHECK (VALUE BETWEEN 20 AND 100);
CREATE DOMAIN health.body_temperature_c AS double precision CHECK (VALUE BETWEEN 10 AND 50);
CREATE DOMAIN health.respiratory_rate_per_min AS double precision CHECK (VALUE BETWEEN 1 AND 150);
CREATE DOMAIN health.systolic_mmhg AS double precision CHECK (VALUE BETWEEN 10 AND 500);
CREATE DOMAIN health.diastolic_mmhg AS double precision CHECK (VALUE BETWEEN 0 AND 350);
CREATE DOMAIN health.body_weight_kg AS double precision CHECK (VALUE BETWEEN 0.2 AND 700);
CREATE DOMAIN health.body_height_cm AS double precision CHECK (VALUE BETWEEN 20 AND 280);
CREATE DOMAIN health.blood_glucose_mmol_l AS double precision CHECK (VALUE BETWEEN 0.1 AND 150);

-- Samples health.ingest refused, kept as sent with the reason, so nothing a device sent is lost.
-- Owner-only: each user reads (and ingest, running as that user, writes) only their own.
CREATE TABLE health.rejected_samples (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      uuid NOT NULL DEFAULT auth.uid(),
    target_table text NOT NULL,            -- the table the batch was for (text: survives its drop)
    ord          integer NOT NULL,         -- 1-based position in the batch
    sample       jsonb NOT NULL,           -- the element exactly as sent
    reason       text NOT NULL,
    sqlstate     text NOT NULL,            -- 22023 unknown kind/unit, 22003 range, 22P02 malformed, 42501 other user
    received_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- A re-sent batch must not store its rejects twice: one row per distinct element per table.
    sample_md5   uuid NOT NULL GENERATED ALWAYS AS (pg_catalog.md5(sample::text)::uuid) STORED
);
CREATE UNIQUE INDEX rejected_samples_once ON health.rejected_samples (user_id, target_table, sample_md5);
CREATE INDEX rejected_samples_user_id_received_at_idx ON health.rejected_samples (user_id, received_at DESC);
SELECT pg_catalog.pg_extension_config_dump('health.rejected_samples', '');
SELECT pg_catalog.pg_extension_config_dump('health.rejected_samples_id_seq', '');

-- The policies name role authenticated, which must exist when they are created. Creating the
-- three NOLOGIN roles here is what auth.create_roles() does anyway (idempotent, no privileges).
SELECT auth.create_roles();
-- The owner policies come from the generator every other owner table uses (ENABLE + FORCE,
-- select and insert for authenticated, the grants); user_id already leads an index.
SELECT pg_catalog.count(*) FROM health_rls.enable_owner_rls('health.rejected_samples', 'user_id', '{select,insert}', '{authenticated}');

-- What \df+ tells a DBA.
COMMENT ON FUNCTION health.normalize_sample() IS
    'BEFORE INSERT OR UPDATE row trigger: value+unit -> the kind''s canonical unit, range-checked (22023 unknown kind/unit, 22003 out of range). '
    'Attach: CREATE TRIGGER normalize BEFORE INSERT OR UPDATE OF kind, value, unit ON t FOR EACH ROW EXECUTE FUNCTION health.normalize_sample(); '
    'other column names: health.normalize_sample(''kind_col'', ''value_col'', ''unit_col'').';
COMMENT ON FUNCTION health.ingest(regclass, jsonb) IS
    'Batch write as the caller (RLS applies): one row per element, status inserted / updated / deleted / duplicate / rejected; id = the table row (the systolic row of a pair) or the health.rejected_samples row (rejected). Accepts catalog codes, HealthKit and Health Connect names and units, intervals, sync versions, deletions and blood-pressure pairs (docs/ingest.md).';
COMMENT ON FUNCTION health.create_metric_table(text) IS
    'Creates the standard sample table: validation trigger, unique (user_id, kind, recorded_at DESC, source) NULLS NOT DISTINCT, owner RLS, realtime.';
COMMENT ON FUNCTION health.normalize(text, double precision, text) IS
    'value in unit expressed in the canonical unit of kind (health.metric_kinds), range-checked.';

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
