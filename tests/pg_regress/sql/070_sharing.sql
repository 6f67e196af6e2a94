-- Sharing with consent and a log of who looked, as the API role: Ada shares her heart rate of a
-- window with Grace; Grace reads exactly that (and Ada sees it in her log); every way around it
-- is refused.
-- The set-up is committed: a grantee read commits its access log entry in a transaction of its
-- own, which must see the extension's tables.
begin;
\i fixtures/setup.sql
commit;
begin;
set local timezone = 'UTC';
select health.create_metric_table('public.health_metrics');
select auth.sign_up('ada@example.com', 'analytical engine') as ada_id \gset
select auth.sign_up('grace@example.com', 'compiler pioneer') as grace_id \gset
select auth.sign_up('eve@example.com', 'eavesdropper 1') as eve_id \gset
select auth.start_session('ada@example.com', 'analytical engine')->>'access_token' as ada \gset
select auth.start_session('grace@example.com', 'compiler pioneer')->>'access_token' as grace \gset
select auth.start_session('eve@example.com', 'eavesdropper 1')->>'access_token' as eve \gset
set local role api_user;
set local role authenticated;
select pg_temp.try(format('select health.shared_keys(%L, %L)', :'ada_id', '[]')) as shared_keys_without_identity;
select auth.authenticate(:'ada') = :'ada_id' as ada;
select count(*) as written from health.ingest('health_metrics', '[
  {"kind": "heart_rate", "value": 61, "unit": "/min", "recorded_at": "2026-11-23T08:00:00Z"},
  {"kind": "heart_rate", "value": 62, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z"},
  {"kind": "heart_rate", "value": 63, "unit": "/min", "recorded_at": "2026-11-25T08:00:00Z"},
  {"kind": "steps", "value": 500, "unit": "{steps}", "recorded_at": "2026-11-24T09:00:00Z"},
  {"kind": "heart_rate", "value": 64, "unit": "/min", "recorded_at": "2026-11-30T08:00:00Z"}]');
-- Ada shares heart rate from the 24th to the 26th with Grace.
select health.share(:'grace_id', '{heart_rate}', '2026-11-24', '2026-11-26') as share_id \gset
-- Bad arguments (22023) and sharing with yourself.
select pg_temp.try(format('select health.share(%L, %L)', :'grace_id', '{}')) as empty_kinds,
       pg_temp.try(format('select health.share(%L, %L)', :'grace_id', '{pulse}')) as unknown_kind,
       pg_temp.try(format('select health.share(%L, %L, %L, %L)', :'grace_id', '{heart_rate}', '2026-11-26', '2026-11-24')) as from_after_until,
       pg_temp.try(format('select health.share(%L, %L)', gen_random_uuid(), '{heart_rate}')) as nonexistent_user,
       pg_temp.try(format('select health.share(%L, %L)', :'ada_id', '{heart_rate}')) as with_yourself,
       pg_temp.try(format('select health.share(%L, %L, expires_at => %L)', :'grace_id', '{heart_rate}', '2020-01-01')) as already_expired;
select direction, kinds, active from (select s->>'direction' as direction, s->'kinds' as kinds, s->>'active' as active from health.shares() s) x;

-- Grace reads exactly the shared kind in the shared window.
select auth.authenticate(:'grace') = :'grace_id' as grace;
select kind, value, recorded_at from health.shared_samples(:'ada_id') order by recorded_at;
-- ... narrowing works; outside the kinds or window there is nothing (and no log entry).
select count(*) as steps_outside_kinds from health.shared_samples(:'ada_id', 'steps');
select count(*) as before_window from health.shared_samples(:'ada_id', until => '2026-11-24');
-- Her own table reads show nothing of Ada's (the metric table stays owner-only).
select count(*) as direct_read from health_metrics;
copy health_metrics to stdout;
-- What a gateway reading the change feed by logical replication asks, as Grace, before it hands
-- her a change of Ada's: only the keys of the shared kind inside the window, in order.
select health.shared_keys(:'ada_id', '[{"id": 1, "kind": "heart_rate", "recorded_at": "2026-11-24T08:00:00Z"},
         {"id": 2, "kind": "steps", "recorded_at": "2026-11-24T09:00:00Z"},
         {"id": 3, "kind": "heart_rate", "recorded_at": "2026-11-30T08:00:00Z"},
         {"id": 4, "kind": "heart_rate", "recorded_at": "2026-11-25T08:00:00+00:00"},
         {"id": 5}, "heart_rate"]') as grace_may_see,
       health.shared_keys(:'ada_id', '{"id": 1, "kind": "heart_rate", "recorded_at": "2026-11-24T08:00:00Z"}') as one_key,
       health.shared_keys(:'eve_id', '[{"id": 1, "kind": "heart_rate", "recorded_at": "2026-11-24T08:00:00Z"}]') as from_eve,
       health.shared_keys(null, '[{"id": 1, "kind": "heart_rate", "recorded_at": "2026-11-24T08:00:00Z"}]') as no_owner;
-- She cannot re-share Ada's data (the caller is always the owner: this shares Grace's own, none).
select pg_temp.try(format('select health.share(%L, %L)', :'eve_id', '{heart_rate}')) is not null as grace_shares_her_own_only;
select auth.authenticate(:'eve') = :'eve_id' as eve;
select pg_temp.try(format('select count(*) from health.shared_samples(%L)', :'ada_id')) as eve_reads_ada;
select count(*) as eve_sees_shares from health.shares();
select health.shared_keys(:'ada_id', '[{"id": 1, "kind": "heart_rate", "recorded_at": "2026-11-24T08:00:00Z"}]') as eve_may_see;
select count(*) as eve_sees_share_rows from health.shares;
-- Nobody forges or deletes log rows, not even the owner.
select pg_temp.try(format('insert into health.access_log (owner_id, grantee_id, share_ids, kinds, row_count) values (%L, %L, %L, %L, 1)', :'ada_id', :'eve_id', '{}', '{heart_rate}')) as forge_log;
select auth.authenticate(:'ada') = :'ada_id' as ada;
select pg_temp.try($$delete from health.access_log$$) as owner_deletes_log;
select pg_temp.try($$update health.shares set expires_at = null$$) as owner_edits_share_directly;
-- Ada sees Grace in her access log: when, who, what, how many.
select grantee_email, kinds, row_count from health.my_access_log();

-- Revocation takes effect at once, in the same transaction and the next.
select health.revoke_share(:'share_id');
select pg_temp.try(format('select health.revoke_share(%L)', :'share_id')) as revoke_again;
select auth.authenticate(:'grace') = :'grace_id' as grace;
select pg_temp.try(format('select count(*) from health.shared_samples(%L)', :'ada_id')) as after_revocation;
select health.shared_keys(:'ada_id', '[{"id": 1, "kind": "heart_rate", "recorded_at": "2026-11-24T08:00:00Z"}]') as keys_after_revocation;
select pg_temp.try(format('select health.revoke_share(%L)', :'share_id')) as grantee_revokes;
-- An expired share reads nothing either (expiry moved into the past as superuser).
select auth.authenticate(:'ada') = :'ada_id' as ada;
select health.share(:'grace_id', '{heart_rate}', expires_at => now() + interval '1 hour') as share2 \gset
reset role;
update health.shares set expires_at = now() - interval '1 second' where id = :'share2';
set local role authenticated;
select auth.authenticate(:'grace') = :'grace_id' as grace;
select pg_temp.try(format('select count(*) from health.shared_samples(%L)', :'ada_id')) as after_expiry;
select health.shared_keys(:'ada_id', '[{"id": 1, "kind": "heart_rate", "recorded_at": "2026-11-24T08:00:00Z"}]') as keys_after_expiry;
-- 10,000 shares of one owner: listing stays an index scan of the caller's rows.
reset role;
insert into health.shares (id, owner_id, grantee_id, kinds)
select gen_random_uuid(), :'ada_id', :'eve_id', '{steps}' from generate_series(1, 10000);
analyze health.shares;
set local role authenticated;
select auth.authenticate(:'grace') = :'grace_id' as grace;
select count(*) as graces_shares from health.shares();
rollback;
-- Clean up what the committed set-up created.
drop extension health_rls;
drop role api_user;
drop role anon, authenticated, service_role;
