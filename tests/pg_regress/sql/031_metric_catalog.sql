-- health.metric_kinds through the standard table, as the API role: every seeded kind stores a
-- typical value and refuses one outside its plausible range (22003); conversions on insert and
-- update; a DBA-added kind works at once; the dump configuration; the typed domains.
begin;
\i fixtures/setup.sql
select health.create_metric_table('public.health_metrics');
-- store(kind, value, unit): inserts one sample and shows what was stored, or "SQLSTATE: message".
create function pg_temp.store(k text, v float8, u text) returns text language plpgsql as $fn$
declare r record;
begin
    insert into public.health_metrics (kind, value, unit, recorded_at)
    values (k, v, u, clock_timestamp()) returning value, unit into r;
    return 'stored ' || r.value || ' ' || r.unit;
exception when others then
    return sqlstate || ': ' || sqlerrm;
end $fn$;

-- The seed: 16 kinds, canonical UCUM units, codes of the three vocabularies.
select code, unit, min_value, max_value, loinc, healthkit, health_connect
  from health.metric_kinds where seeded order by code;

set local role api_user;
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;

-- Each seeded kind: a typical value is stored, a value beyond the plausible range is refused.
with cases(code, unit, typical, outside) as (values
    ('heart_rate', '/min', 72, 301),
    ('resting_heart_rate', '/min', 58, 15),
    ('heart_rate_variability_sdnn', 'ms', 48, 650),
    ('steps', '{steps}', 8500, 1000001),
    ('distance', 'm', 5200, -1),
    ('active_energy', 'kcal', 450, 1000001),
    ('oxygen_saturation', '%', 97, 101),
    ('respiratory_rate', '/min', 16, 0),
    ('body_temperature', 'Cel', 36.8, 51),
    ('body_weight', 'kg', 72.5, 0.1),
    ('body_height', 'cm', 178, 300),
    ('body_mass_index', 'kg/m2', 22.9, 2),
    ('blood_pressure_systolic', 'mm[Hg]', 118, 520),
    ('blood_pressure_diastolic', 'mm[Hg]', 76, -5),
    ('blood_glucose', 'mmol/L', 5.4, 160),
    ('sleep_duration', 'h', 7.5, 25))
select c.code, pg_temp.store(c.code, c.typical, c.unit) as typical, pg_temp.store(c.code, c.outside, c.unit) as outside
  from cases c join health.metric_kinds k on k.code = c.code and k.seeded
 order by c.code;

-- Ranges are plausibility, not "normal": a hypertensive crisis and a severe hypoglycaemia are stored.
select pg_temp.store('blood_pressure_systolic', 250, 'mm[Hg]') as crisis_250,
       pg_temp.store('blood_pressure_diastolic', 140, 'mm[Hg]') as diastolic_140,
       pg_temp.store('blood_glucose', 1.8, 'mmol/L') as hypo_1_8,
       pg_temp.store('heart_rate', 220, '/min') as tachycardia_220,
       pg_temp.store('oxygen_saturation', 78, '%') as hypoxaemia_78;

-- Units are converted to the canonical unit on the way in.
select pg_temp.store('body_temperature', 98.6, '[degF]') as f_98_6,
       pg_temp.store('blood_glucose', 100, 'mg/dL') as glucose_100_mg_dl,
       pg_temp.store('oxygen_saturation', 0.97, '1') as healthkit_fraction,
       pg_temp.store('body_weight', 154, '[lb_av]') as lb_154,
       pg_temp.store('body_height', 70, '[in_i]') as in_70,
       pg_temp.store('distance', 3.1, '[mi_i]') as mi_3_1,
       pg_temp.store('active_energy', 2000, 'kJ') as kj_2000,
       pg_temp.store('sleep_duration', 27000, 's') as s_27000,
       pg_temp.store('heart_rate_variability_sdnn', 0.052, 's') as sdnn_s;
select kind, value, unit from health_metrics
 where kind in ('body_temperature', 'blood_glucose') order by kind, value;
-- ... and the value is checked in the canonical unit, the message naming what was sent.
select pg_temp.store('body_temperature', 98.6, 'Cel') as f_sent_as_cel,
       pg_temp.store('oxygen_saturation', 0.97, '%') as fraction_sent_as_percent;
select pg_temp.store('body_temperature', 150, '[degF]') as f_150;
-- Unknown kind, unknown unit, a unit of the wrong dimension, no unit: 22023.
select pg_temp.store('pulse', 72, '/min') as unknown_kind;
select pg_temp.store('heart_rate', 72, 'beats') as unknown_unit;
select pg_temp.store('heart_rate', 72, 'kg') as wrong_dimension;
select pg_temp.store('heart_rate', 72, null) as no_unit;
select pg_temp.store('heart_rate', 'NaN', '/min') as not_a_number;

-- UPDATE is validated too: a corrected unit is converted, an out-of-range value refused.
update health_metrics set value = 99.5, unit = '[degF]' where kind = 'body_temperature' and value = 37
returning kind, value, unit;
select pg_temp.try($$update health_metrics set value = 400 where kind = 'heart_rate'$$);
select count(*) as heart_rates_above_300 from health_metrics where kind = 'heart_rate' and value > 300;
reset role;

-- A DBA adds a kind: usable at once (the per-backend catalog cache follows the table),
-- not marked seeded, so pg_dump keeps it; its unit must be a known UCUM code.
insert into health.metric_kinds (code, display, unit, min_value, max_value)
values ('waist_circumference', 'Waist circumference', 'cm', 30, 300);
select pg_temp.try($$insert into health.metric_kinds (code, display, unit) values ('mood', 'Mood', 'smiles')$$);
select pg_temp.try($$insert into health.metric_kinds (code, display, unit, min_value, max_value) values ('x', 'X', 'kg', 5, 1)$$);
set local role authenticated;
select pg_temp.store('waist_circumference', 32, '[in_i]') as waist_in_inches;
reset role;
update health.metric_kinds set max_value = 60 where code = 'waist_circumference';
set local role authenticated;
select pg_temp.store('waist_circumference', 32, '[in_i]') as after_narrowing;
-- The API role reads the catalog but cannot change it.
select count(*) as kinds_visible from health.metric_kinds;
select pg_temp.try($$update health.metric_kinds set max_value = 1000 where code = 'heart_rate'$$);
select pg_temp.try($$insert into health.metric_kinds (code, display, unit) values ('evil', 'Evil', 'kg')$$);
reset role;
select code, seeded from health.metric_kinds where not seeded;
-- pg_dump: only rows added by the DBA are dumped as data (the seed comes from the extension script).
select c.relname, x.cond
  from pg_extension e, unnest(e.extconfig, e.extcondition) as x(oid, cond)
  join pg_class c on c.oid = x.oid
 where e.extname = 'health_rls' and c.relnamespace = 'health'::regnamespace
 order by 1;

-- Domains: plain numbers underneath (drivers see double precision / bigint), range-checked.
select t.typname, format_type(t.typbasetype, null) as base, pg_get_constraintdef(c.oid) as check_
  from pg_type t join pg_constraint c on c.contypid = t.oid
 where t.typnamespace = 'health'::regnamespace and t.typtype = 'd' order by 1;
set local role authenticated;
select 72::health.heart_rate_bpm as bpm, 8500::health.step_count as steps, 97.5::health.spo2_percent as spo2,
       36.6::health.body_temperature_c as temp, pg_typeof(72::health.heart_rate_bpm) as type;
select pg_temp.try($$select 400::health.heart_rate_bpm$$);
select pg_temp.try($$select (-1)::health.step_count$$);
select pg_temp.try($$select 101::health.spo2_percent$$);
select pg_temp.try($$select 'NaN'::health.spo2_percent$$);
select pg_temp.try($$select 98.6::health.body_temperature_c$$);
select pg_temp.try($$select 600::health.systolic_mmhg$$);
select pg_temp.try($$select 0.05::health.body_weight_kg$$);
rollback;
