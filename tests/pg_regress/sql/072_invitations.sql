-- Sharing by email: Ada invites an address; the person signed in with it sees the invitation and
-- accepts it (which makes the share) or declines it; Ada can revoke it. An inviter learns nothing
-- about the address, and nobody else can use or see the invitation.
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
select pg_temp.try($$select health.invite('grace@example.com', '{heart_rate}')$$) as unauthenticated;
select auth.authenticate(:'ada') = :'ada_id' as ada;
select count(*) as written from health.ingest('health_metrics', '[
  {"kind": "heart_rate", "value": 61, "unit": "/min", "recorded_at": "2026-11-23T08:00:00Z"},
  {"kind": "heart_rate", "value": 62, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z"},
  {"kind": "steps", "value": 500, "unit": "{steps}", "recorded_at": "2026-11-24T09:00:00Z"}]');
-- The same answer for an address with an account (in another spelling), one without, and one
-- that will sign up later: an id, and nothing else.
select health.invite(' Grace@Example.COM', '{heart_rate}', '2026-11-24', '2026-11-26') as to_grace \gset
select health.invite('nobody@example.org', '{heart_rate}') as to_nobody \gset
select health.invite('hopper@example.com', '{heart_rate,steps}') as to_hopper \gset
select health.invite('grace@example.com', '{steps}') as to_grace_steps \gset
select pg_typeof(:'to_grace'::uuid) as answer_with_account, pg_typeof(:'to_nobody'::uuid) as answer_without;
-- Bad arguments (22023), inviting yourself.
select pg_temp.try($$select health.invite('not an address', '{heart_rate}')$$) as not_an_address,
       pg_temp.try($$select health.invite(null, '{heart_rate}')$$) as null_address,
       pg_temp.try($$select health.invite('grace@example.com', '{pulse}')$$) as unknown_kind,
       pg_temp.try($$select health.invite('grace@example.com', '{}')$$) as no_kind,
       pg_temp.try($$select health.invite('grace@example.com', '{heart_rate}', expires_at => '2020-01-01')$$) as already_expired,
       pg_temp.try($$select health.invite('ADA@example.com', '{heart_rate}')$$) as yourself;
select direction, email, kinds, data_from, status from health.invitations() order by email, kinds;
-- Nobody reads or writes the table directly.
select pg_temp.try($$select count(*) from health.invitations$$) as read_table,
       pg_temp.try($$update health.invitations set email = 'eve@example.com'$$) as write_table;

-- Eve sees none of them and can neither accept nor decline one: the same error as for an id
-- that does not exist.
select auth.authenticate(:'eve') = :'eve_id' as eve;
select count(*) as eve_sees from health.invitations();
select pg_temp.try(format('select health.accept_invitation(%L)', :'to_grace')) as eve_accepts_graces,
       pg_temp.try(format('select health.accept_invitation(%L)', gen_random_uuid())) as eve_accepts_unknown,
       pg_temp.try(format('select health.decline_invitation(%L)', :'to_grace')) as eve_declines_graces,
       pg_temp.try(format('select health.revoke_invitation(%L)', :'to_grace')) as eve_revokes_adas;

-- Grace sees the two addressed to her, from Ada's address, accepts one and declines the other.
select auth.authenticate(:'grace') = :'grace_id' as grace;
select direction, email, kinds, status from health.invitations() order by kinds;
select pg_temp.try(format('select health.shared_samples(%L)', :'ada_id')) as before_accepting;
select health.accept_invitation(:'to_grace') as grace_share \gset
select kind, value, recorded_at from health.shared_samples(:'ada_id') order by recorded_at;
select s->>'direction' as direction, s->'kinds' as kinds, s->>'active' as active, (s->>'id') = :'grace_share' as the_share
  from health.shares() s;
select health.decline_invitation(:'to_grace_steps');
select pg_temp.try(format('select health.accept_invitation(%L)', :'to_grace')) as accept_twice,
       pg_temp.try(format('select health.accept_invitation(%L)', :'to_grace_steps')) as accept_declined,
       pg_temp.try('select health.accept_invitation(null)') as accept_null;
select kinds, status, share_id = :'grace_share' as the_share from health.invitations() order by kinds;

-- Ada sees what became of them; revoking the accepted one ends Grace's share at once.
select auth.authenticate(:'ada') = :'ada_id' as ada;
select email, kinds, status, share_id is not null as has_share from health.invitations() order by email, kinds;
select health.revoke_invitation(:'to_grace');
select pg_temp.try(format('select health.revoke_invitation(%L)', :'to_grace')) as revoke_twice,
       pg_temp.try(format('select health.revoke_invitation(%L)', :'to_grace_steps')) as revoke_declined;
select auth.authenticate(:'grace') = :'grace_id' as grace;
select pg_temp.try(format('select health.shared_samples(%L)', :'ada_id')) as after_revoke;
select kinds, status from health.invitations() order by kinds;

-- An address without an account: whoever signs up with it later finds the invitation waiting.
reset role;
select auth.sign_up('Hopper@example.com', 'cobol forever') as hopper_id \gset
select auth.start_session('hopper@example.com', 'cobol forever')->>'access_token' as hopper \gset
set local role authenticated;
select auth.authenticate(:'hopper') = :'hopper_id' as hopper;
select direction, email, kinds, status from health.invitations();
select health.accept_invitation(:'to_hopper') is not null as accepted;
select kind, value from health.shared_samples(:'ada_id') order by recorded_at;

-- An invitation past its 30 days cannot be accepted.
select auth.authenticate(:'ada') = :'ada_id' as ada;
select health.invite('eve@example.com', '{heart_rate}') as to_eve \gset
reset role;
update health.invitations set valid_until = now() - interval '1 second', created_at = now() - interval '31 days' where id = :'to_eve';
set local role authenticated;
select auth.authenticate(:'eve') = :'eve_id' as eve;
select status from health.invitations();
select pg_temp.try(format('select health.accept_invitation(%L)', :'to_eve')) as accept_expired;

-- Both parties' exports hold the invitation: Ada's all she sent, Eve's the one to her address.
select jsonb_array_length(health.export_my_data()->'invitations') as eve_exports;
select auth.authenticate(:'ada') = :'ada_id' as ada;
select jsonb_array_length(health.export_my_data()->'invitations') as ada_exports;
-- Erasing Ada's account removes the invitations she sent.
select auth.authenticate(:'ada') = :'ada_id' as ada;
select (health.erase_my_data('ada@example.com')->'deleted'->>'health.invitations')::int as invitations_erased;
reset role;
select count(*) as left_behind from health.invitations where owner_id = :'ada_id';
rollback;
-- Clean up what the committed set-up created (and the access log entries committed on their own).
drop extension health_rls;
drop role api_user;
drop role anon, authenticated, service_role;
