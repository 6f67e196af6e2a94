-- health.convert and health.normalize (DESIGN.md §3), called as the API's role: UCUM
-- conversions, the canonical unit per kind, and the SQLSTATEs of bad kinds, units and ranges.
begin;
\i fixtures/setup.sql
set local role api_user;
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;

-- Conversions over the units of DESIGN §3.
select v.*, health.convert(v.value, v.from_unit, v.to_unit) as converted
  from (values (98.6, '[degF]', 'Cel'), (37, 'Cel', '[degF]'), (32, '[degF]', 'Cel'), (-40, '[degF]', 'Cel'),
               (154, '[lb_av]', 'kg'), (70, 'kg', '[lb_av]'), (70500, 'g', 'kg'),
               (70, '[in_i]', 'cm'), (1.82, 'm', 'cm'), (26.2, '[mi_i]', 'km'), (5000, 'm', '[mi_i]'),
               (500, 'kcal', 'kJ'), (2000, 'kJ', 'kcal'),
               (7.5, 'h', 'min'), (27000, 's', 'h'), (0.045, 's', 'ms'),
               (0.97, '1', '%'), (72, '/min', '/min')) as v(value, from_unit, to_unit);
-- mg/dL <-> mmol/L crosses mass and substance concentration: it needs a molar mass.
select health.convert(100, 'mg/dL', 'mmol/L', 180.16) as glucose_mmol,
       health.convert(5.5, 'mmol/L', 'mg/dL', 180.16) as glucose_mg;
select pg_temp.try($$select health.convert(100, 'mg/dL', 'mmol/L')$$);
-- Unknown and incompatible units: 22023.
select pg_temp.try($$select health.convert(72, 'bpm', '/min')$$);
select pg_temp.try($$select health.convert(1, 'kg', 'cm')$$);
select pg_temp.try($$select health.convert(1, '/min', 'min')$$);
select pg_temp.try($$select health.convert(1000, '{steps}', '%')$$);
select pg_temp.try($$select health.convert(1, 'cel', 'Cel')$$);

-- normalize: the kind decides the canonical unit (glucose: mmol/L, via 180.16 g/mol).
select health.normalize('body_temperature', 98.6, '[degF]') as temp_cel,
       health.normalize('blood_glucose', 100, 'mg/dL') as glucose_mmol_l,
       round(health.normalize('blood_glucose', 100, 'mg/dL')::numeric, 2) as glucose_2dp,
       health.normalize('oxygen_saturation', 0.97, '1') as spo2_from_fraction,
       health.normalize('body_height', 70, '[in_i]') as height_cm,
       health.normalize('sleep_duration', 450, 'min') as sleep_h,
       health.normalize('heart_rate_variability_sdnn', 0.045, 's') as sdnn_ms,
       health.normalize('distance', 3.1, '[mi_i]') as distance_m,
       health.normalize('active_energy', 1000, 'kJ') as energy_kcal,
       health.normalize('body_weight', 154, '[lb_av]') as weight_kg;
-- Unknown kind or unit: 22023. Out of range: 22003, naming kind, value, unit and range.
select pg_temp.try($$select health.normalize('pulse', 72, '/min')$$);
select pg_temp.try($$select health.normalize('heart_rate', 72, 'beats')$$);
select pg_temp.try($$select health.normalize('heart_rate', 72, 'kg')$$);
select pg_temp.try($$select health.normalize('heart_rate', 400, '/min')$$);
select pg_temp.try($$select health.normalize('heart_rate', 'NaN', '/min')$$);
-- The HealthKit SpO2 fraction sent with '%' is refused, not stored as 0.97 %.
select pg_temp.try($$select health.normalize('oxygen_saturation', 0.97, '%')$$);
-- A Fahrenheit number sent as Cel, and Cel sent as [degF].
select pg_temp.try($$select health.normalize('body_temperature', 98.6, 'Cel')$$);
select pg_temp.try($$select health.normalize('body_temperature', 37, '[degF]')$$);
select pg_temp.try($$select health.normalize('blood_glucose', 2000, 'mg/dL')$$);
select pg_temp.try($$select health.normalize('heart_rate', 'Infinity', '/min')$$);
-- A kind with a molar mass in the catalog converts mg/dL; glucose at 600 mg/dL (meter maximum) is accepted.
select round(health.normalize('blood_glucose', 600, 'mg/dL')::numeric, 3) as glucose_600_mg_dl;
-- NULL in, NULL out (strict).
select health.normalize('heart_rate', null, '/min') is null as null_value,
       health.convert(null, 'kg', 'g') is null as null_convert;
rollback;
