-- health.create_metric_table (as a non-superuser DBA role), owner RLS between two users, the
-- duplicate key, and the validation trigger attached to a DBA's own table.
begin;
\i fixtures/setup.sql
\i fixtures/plan.sql
create role table_owner nologin;
grant create, usage on schema public to table_owner;
-- Attaching the realtime trigger is reserved (realtime.sql revokes it from PUBLIC): granted here.
grant execute on function health_rls.realtime_notify() to table_owner;
set local role table_owner;
select health.create_metric_table('health_metrics') as created;
select attname, format_type(atttypid, atttypmod) as type, attnotnull as not_null, pg_get_expr(d.adbin, d.adrelid) as default_,
       attidentity as identity
  from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
 where attrelid = 'health_metrics'::regclass and attnum > 0 and not attisdropped order by attnum;
select indexdef from pg_indexes where tablename = 'health_metrics' order by 1;
-- (contype n: PostgreSQL 18 lists NOT NULL constraints here too.)
select conname, pg_get_constraintdef(oid) from pg_constraint where conrelid = 'health_metrics'::regclass and contype <> 'n' order by 1;
select tgname, pg_get_triggerdef(oid) like '%BEFORE INSERT OR UPDATE OF kind, value, unit%FOR EACH ROW EXECUTE FUNCTION health.normalize_sample()' as validates
  from pg_trigger where tgrelid = 'health_metrics'::regclass and tgname = 'normalize_sample';
select count(*) as realtime_triggers from pg_trigger where tgrelid = 'health_metrics'::regclass and tgname like 'health_rls_realtime%';
select relrowsecurity, relforcerowsecurity, relowner::regrole from pg_class where oid = 'health_metrics'::regclass;
select policyname, cmd, roles from pg_policies where tablename = 'health_metrics' order by policyname;
select privilege_type from information_schema.role_table_grants
 where table_name = 'health_metrics' and grantee = 'authenticated' order by 1;
-- The RLS audit finds nothing to fix on the generated table.
select count(*) as audit_findings from health_rls.audit() where object like '%health_metrics%';
-- Any name a DBA can write works, quoted once; an existing table is refused.
select health.create_metric_table('public."odd ""metrics"""') as created;
select pg_temp.try($$select health.create_metric_table('health_metrics')$$) like '42P07:%' as exists_already;
reset role;

-- Two users through the API role: each stores and sees only their own samples.
set local role api_user;
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;
insert into health_metrics (kind, value, unit, recorded_at, source) values
    ('heart_rate', 61, '/min', '2026-11-24 08:00+00', 'watch'),
    ('heart_rate', 64, '/min', '2026-11-24 08:01+00', 'watch'),
    ('steps', 1200, '{steps}', '2026-11-24 08:00+00', 'phone');
select auth.authenticate(:'bob') is not null as bob;
insert into health_metrics (kind, value, unit, recorded_at, source) values
    ('heart_rate', 88, '/min', '2026-11-24 08:00+00', 'watch');
select user_id = :'bob_id' as is_bob, kind, value from health_metrics order by id;
-- bob can neither change alice's rows nor write rows in her name.
update health_metrics set value = 200 where kind = 'steps';
delete from health_metrics where kind = 'steps';
select pg_temp.try(format($$insert into health_metrics (user_id, kind, value, unit, recorded_at) values (%L, 'heart_rate', 70, '/min', now())$$, :'alice_id'));
select auth.authenticate(:'alice') is not null as alice;
select kind, value, source from health_metrics order by id;
-- A re-sent sample (same kind, recorded_at, source) is a duplicate, also with no source ...
select pg_temp.try($$insert into health_metrics (kind, value, unit, recorded_at, source) values ('heart_rate', 61, '/min', '2026-11-24 08:00+00', 'watch')$$) as resent;
insert into health_metrics (kind, value, unit, recorded_at) values ('body_weight', 72.4, 'kg', '2026-11-24 07:00+00');
select pg_temp.try($$insert into health_metrics (kind, value, unit, recorded_at) values ('body_weight', 72.4, 'kg', '2026-11-24 07:00+00')$$) as resent_no_source;
-- ... while another device measuring the same instant is another sample.
insert into health_metrics (kind, value, unit, recorded_at, source) values ('heart_rate', 62, '/min', '2026-11-24 08:00+00', 'chest strap');
select count(*) as alice_rows from health_metrics;
-- The latest samples of one kind come from the unique index, newest first.
set local enable_seqscan = off;
select * from pg_temp.plan('costs off', format('select value from health_metrics where user_id = %L and kind = %L order by recorded_at desc limit 10', :'alice_id', 'heart_rate'));
reset enable_seqscan;
reset role;

-- The trigger on a DBA's own table: other column names, a numeric value column.
set local role table_owner;
create table vitals (
    id bigint generated always as identity primary key,
    metric text not null,
    reading numeric not null,
    uom varchar(16),
    taken_at timestamptz not null default now()
);
create trigger normalize before insert or update of metric, reading, uom on vitals
    for each row execute function health.normalize_sample('metric', 'reading', 'uom');
insert into vitals (metric, reading, uom) values ('body_temperature', 98.6, '[degF]'), ('blood_glucose', 100, 'mg/dL'),
    ('heart_rate', 72, '/min') returning metric, reading, uom;
select pg_temp.try($$insert into vitals (metric, reading, uom) values ('heart_rate', 72, 'beats')$$);
select pg_temp.try($$insert into vitals (metric, reading, uom) values ('blood_pressure_systolic', 600, 'mm[Hg]')$$);
-- The column layout is cached per trigger and follows ALTER TABLE: a changed value type and a
-- re-created (moved) value column are used at once.
create table readings (metric text, reading numeric, uom text);
create trigger normalize before insert on readings for each row execute function health.normalize_sample('metric', 'reading', 'uom');
insert into readings values ('body_weight', 154, '[lb_av]') returning metric, reading, pg_typeof(reading), uom;
alter table readings alter column reading type double precision;
insert into readings values ('body_weight', 155, '[lb_av]') returning metric, reading, pg_typeof(reading), uom;
alter table readings drop column reading;
alter table readings add column note text, add column reading integer;
insert into readings (metric, reading, uom) values ('steps', 1200, '{steps}'), ('body_weight', 156, '[lb_av]')
returning metric, reading, pg_typeof(reading), uom;
-- Misattached triggers are refused with a clear message.
create table wrong_cols (kind text, amount float8, unit text);
create trigger normalize before insert on wrong_cols for each row execute function health.normalize_sample();
select pg_temp.try($$insert into wrong_cols values ('heart_rate', 72, '/min')$$);
create table wrong_args (kind text, value float8, unit text);
create trigger normalize before insert on wrong_args for each row execute function health.normalize_sample('kind');
select pg_temp.try($$insert into wrong_args values ('heart_rate', 72, '/min')$$);
create table wrong_timing (kind text, value float8, unit text);
create trigger normalize after insert on wrong_timing for each row execute function health.normalize_sample();
select pg_temp.try($$insert into wrong_timing values ('heart_rate', 72, '/min')$$);
create table wrong_type (kind text, value text, unit text);
create trigger normalize before insert on wrong_type for each row execute function health.normalize_sample();
select pg_temp.try($$insert into wrong_type values ('heart_rate', '72', '/min')$$);
-- The standard table has no foreign key on kind (the trigger checks kinds); deleting, renaming or
-- truncating away a kind that samples use is refused all the same (23503), in every table with
-- the trigger (vitals names its kind column "metric"), whoever owns those rows.
reset role;
insert into health.metric_kinds (code, display, unit, min_value, max_value) values ('mood', 'Mood', '1', 0, 1), ('unused', 'Unused', '1', 0, 1);
insert into vitals (metric, reading, uom) values ('mood', 0.5, '1');
select pg_temp.try($$delete from health.metric_kinds where code = 'mood'$$) as delete_in_use;
select pg_temp.try($$update health.metric_kinds set code = 'feeling' where code = 'mood'$$) as rename_in_use;
select pg_temp.try($$truncate health.metric_kinds$$) as truncate_in_use;
select pg_temp.try($$update health.metric_kinds set display = 'Mood (1-5)' where code = 'mood'$$) as other_change;
select pg_temp.try($$delete from health.metric_kinds where code = 'unused'$$) as delete_unused;
delete from vitals where metric = 'mood';
select pg_temp.try($$delete from health.metric_kinds where code = 'mood'$$) as delete_after_samples_gone;
-- ... and a deleted kind is refused by the trigger at once.
select pg_temp.try($$insert into vitals (metric, reading, uom) values ('mood', 0.5, '1')$$) as insert_deleted_kind;
rollback;
