-- Randomized: 6 users, each with samples of 3 kinds over 10 days; 30 random shares (kinds,
-- windows, expiries), a third revoked. Every (grantee, owner) read through shared_samples is
-- compared with what the active shares allow, computed independently; leaks must be 0.
-- The set-up is committed: a grantee read commits its access log entry in a transaction of its
-- own, which must see the extension's tables.
begin;
\i fixtures/setup.sql
commit;
begin;
set local timezone = 'UTC';
select setseed(0.42);
select health.create_metric_table('public.health_metrics');
create temp table people as
select n, auth.sign_up('p' || n || '@example.com', 'password ' || n) as id from generate_series(1, 6) n;
alter table people add column token text;
update people set token = auth.start_session('p' || n || '@example.com', 'password ' || n)->>'access_token';
-- Samples, written by each owner through ingest.
do $$
declare p record;
begin
  for p in select * from people loop
    perform auth.authenticate(p.token);
    perform health.ingest('health_metrics', (
      select jsonb_agg(jsonb_build_object('kind', k, 'value', 60 + d, 'unit', case k when 'steps' then '{steps}' when 'heart_rate' then '/min' else '%' end,
                                          'recorded_at', '2026-11-01'::timestamptz + d * interval '1 day' + h * interval '6 hours'))
        from unnest(array['heart_rate', 'steps', 'oxygen_saturation']) k, generate_series(0, 9) d, generate_series(0, 3) h));
  end loop;
end $$;
-- Random shares, each made by its owner; a third revoked by the owner.
create temp table made (share_id uuid, owner int, grantee int);
do $$
declare i int; o int; g int; ks text[]; f timestamptz; u timestamptz; sid uuid;
begin
  for i in 1..30 loop
    o := 1 + floor(random() * 6); g := 1 + floor(random() * 6);
    continue when o = g;
    ks := (select array_agg(k) from unnest(array['heart_rate', 'steps', 'oxygen_saturation']) k where random() < 0.5);
    continue when ks is null;
    f := case when random() < 0.5 then '2026-11-01'::timestamptz + floor(random() * 10) * interval '1 day' end;
    u := case when random() < 0.5 then coalesce(f, '2026-11-01') + floor(random() * 6) * interval '1 day' end;
    perform auth.authenticate((select token from people where n = o));
    sid := health.share((select id from people where n = g), ks, f, u);
    insert into made values (sid, o, g);
    if random() < 0.33 then perform health.revoke_share(sid); end if;
  end loop;
end $$;
-- What each grantee may see, computed straight from the tables (as superuser).
create temp table allowed as
select distinct s.grantee_id, m.user_id as owner_id, m.id
  from health.shares s join health_metrics m on m.user_id = s.owner_id and m.kind = any (s.kinds)
 where s.revoked_at is null and (s.expires_at is null or s.expires_at > now())
   and (s.data_from is null or m.recorded_at >= s.data_from) and (s.data_until is null or m.recorded_at <= s.data_until);
create temp table seen (grantee_id uuid, owner_id uuid, id bigint);
grant insert, select on seen to authenticated;
grant select on people to authenticated;
-- Every grantee reads every owner, as the API role.
set local role authenticated;
do $$
declare g record; o record;
begin
  for g in select * from people loop
    perform auth.authenticate(g.token);
    for o in select * from people where n <> g.n loop
      begin
        insert into seen select g.id, o.id, s.id from health.shared_samples(o.id) s;
      exception when insufficient_privilege then null;  -- no active share: nothing to read
      end;
    end loop;
  end loop;
end $$;
reset role;
select (select count(*) from made) as shares_made,
       (select count(*) from health.shares where revoked_at is not null) as revoked,
       (select count(*) from seen) as rows_read,
       (select count(*) from (select * from seen except select * from allowed) x) as leaked,
       (select count(*) from (select * from allowed except select * from seen) x) as withheld,
       (select sum(row_count) from health.access_log where owner_id in (select id from people)) = (select count(*) from seen) as every_read_logged;
rollback;
-- Clean up what the committed set-up created.
drop extension health_rls;
drop role api_user;
drop role anon, authenticated, service_role;
