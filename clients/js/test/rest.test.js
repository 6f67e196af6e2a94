// supabase-js's database client (postgrest-js), unmodified, against health-rls-gateway's /rest/v1:
// two people at once, each writes and reads only their own rows; the database's row level
// security decides, the gateway only translates (scripts/js-tests sets up the cluster).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { newApp } from '../src/app.js';

const URL = process.env.SUPABASE_URL;
const KEY = process.env.SUPABASE_PUBLISHABLE_KEY;

async function signedIn() {
  const app = await newApp(URL, KEY);
  const p = { email: `rest-${randomUUID()}@example.com`, password: 'correct horse battery' };
  await app.supabase.auth.signUp(p);
  const { data, error } = await app.supabase.auth.signInWithPassword(p);
  assert.equal(error, null);
  return { ...app, id: data.user.id };
}

const at = (minute) => new Date(Date.UTC(2026, 11, 1, 8, minute)).toISOString();

test('two people insert heart rate at once; each reads back only their own, values included', async () => {
  const [ada, bob] = await Promise.all([signedIn(), signedIn()]);
  const [a, b] = await Promise.all([
    ada.supabase.from('health_metrics').insert([
      { kind: 'heart_rate', value: 61, unit: '/min', recorded_at: at(0) },
      { kind: 'heart_rate', value: 62, unit: '/min', recorded_at: at(1) },
    ]).select(),
    bob.supabase.from('health_metrics').insert({ kind: 'heart_rate', value: 91, unit: '/min', recorded_at: at(0) }).select(),
  ]);
  assert.equal(a.error, null);
  assert.equal(b.error, null);
  assert.equal(a.status, 201);
  assert.deepEqual(a.data.map((r) => r.user_id), [ada.id, ada.id], 'owned by the signed-in user (the column default)');
  const history = await ada.supabase.from('health_metrics')
    .select('id, kind, value, user_id').eq('kind', 'heart_rate').order('recorded_at', { ascending: true });
  assert.equal(history.error, null);
  assert.deepEqual(history.data.map((r) => r.value), [61, 62]);
  assert.ok(history.data.every((r) => r.user_id === ada.id), "none of bob's rows");
  const bobs = await bob.supabase.from('health_metrics').select('value');
  assert.deepEqual(bobs.data.map((r) => r.value), [91]);
  // Filters on the other user's id find nothing: RLS, not the filter, decides.
  const peek = await bob.supabase.from('health_metrics').select('*').eq('user_id', ada.id);
  assert.equal(peek.error, null);
  assert.deepEqual(peek.data, []);
});

test("an insert naming another user's id is refused with PostgREST's error", async () => {
  const [ada, bob] = await Promise.all([signedIn(), signedIn()]);
  const { data, error, status } = await ada.supabase.from('health_metrics')
    .insert({ user_id: bob.id, kind: 'heart_rate', value: 70, unit: '/min', recorded_at: at(5) });
  assert.equal(data, null);
  assert.equal(status, 403);
  assert.equal(error.code, '42501');
  assert.match(error.message, /row-level security/);
  const bobs = await bob.supabase.from('health_metrics').select('*');
  assert.deepEqual(bobs.data, [], 'nothing was written in bob\'s name');
});

test('a value the catalog refuses is a 400 with the database\'s reason, and nothing is stored', async () => {
  const ada = await signedIn();
  const { error, status } = await ada.supabase.from('health_metrics')
    .insert({ kind: 'heart_rate', value: 400, unit: '/min', recorded_at: at(9) });
  assert.equal(status, 400);
  assert.match(error.code, /^22/);
  assert.deepEqual((await ada.supabase.from('health_metrics').select('*')).data, []);
});

test('anon (no session) reads nothing and cannot write', async () => {
  const ada = await signedIn();
  await ada.supabase.from('health_metrics').insert({ kind: 'heart_rate', value: 66, unit: '/min', recorded_at: at(2) });
  const anon = await newApp(URL, KEY);
  const r = await anon.supabase.from('health_metrics').select('*');
  assert.ok(r.error || r.data.length === 0, 'anon sees no row');
  const w = await anon.supabase.from('health_metrics').insert({ kind: 'heart_rate', value: 66, unit: '/min', recorded_at: at(3) });
  assert.ok([401, 403].includes(w.status), `anon write refused, got ${w.status}`);
});

test("rpc('ingest') in the health schema returns the per-sample report of a HealthKit batch", async () => {
  const ada = await signedIn();
  const { data, error } = await ada.supabase.schema('health').rpc('ingest', {
    tbl: 'public.health_metrics',
    samples: [
      { kind: 'HKQuantityTypeIdentifierHeartRate', value: 64, unit: 'count/min', start: '2021-11-30 07:47:59 +0200' },
      { kind: 'HKQuantityTypeIdentifierHeartRate', value: 64, unit: 'count/min', start: '2021-11-30 07:47:59 +0200' },
      { kind: 'heart_rate', value: 500, unit: '/min', recorded_at: at(7) },
    ],
  });
  assert.equal(error, null);
  assert.deepEqual(data.map((r) => r.status), ['inserted', 'duplicate', 'rejected']);
  const stored = await ada.supabase.from('health_metrics').select('value, unit').eq('kind', 'heart_rate');
  assert.deepEqual(stored.data, [{ value: 64, unit: '/min' }]);
});

test('unknown tables and functions are PostgREST\'s 404s; an unexposed schema is 406', async () => {
  const ada = await signedIn();
  const t = await ada.supabase.from('no_such_table').select('*');
  assert.equal(t.status, 404);
  assert.equal(t.error.code, 'PGRST205');
  const f = await ada.supabase.rpc('no_such_function', { x: 1 });
  assert.equal(f.status, 404);
  assert.equal(f.error.code, 'PGRST202');
  const s = await ada.supabase.schema('auth').from('users').select('*');
  assert.equal(s.status, 406);
  assert.equal(s.error.code, 'PGRST106');
});

test('/rest/v1 without the publishable key is 401', async () => {
  const r = await fetch(`${URL}/rest/v1/health_metrics?select=*`);
  assert.equal(r.status, 401);
});

test("update and delete reach only one's own rows; without a filter they are refused", async () => {
  const [ada, bob] = await Promise.all([signedIn(), signedIn()]);
  const mine = await ada.supabase.from('health_metrics')
    .insert({ kind: 'heart_rate', value: 70, unit: '/min', recorded_at: at(20) }).select('id');
  const theirs = await bob.supabase.from('health_metrics')
    .insert({ kind: 'heart_rate', value: 80, unit: '/min', recorded_at: at(20) }).select('id');
  const up = await ada.supabase.from('health_metrics').update({ value: 71 }).eq('id', mine.data[0].id).select('id, value');
  assert.equal(up.error, null);
  assert.deepEqual(up.data, [{ id: mine.data[0].id, value: 71 }]);
  // Bob's row by its id: RLS hides it, so nothing is updated or deleted.
  const sneaky = await ada.supabase.from('health_metrics').update({ value: 1 }).eq('id', theirs.data[0].id).select();
  assert.deepEqual(sneaky.data, []);
  const gone = await ada.supabase.from('health_metrics').delete().eq('id', theirs.data[0].id).select();
  assert.deepEqual(gone.data, []);
  assert.deepEqual((await bob.supabase.from('health_metrics').select('value')).data, [{ value: 80 }]);
  const all = await ada.supabase.from('health_metrics').delete();
  assert.equal(all.status, 400);
  assert.equal(all.error.code, '21000');
  const del = await ada.supabase.from('health_metrics').delete().eq('id', mine.data[0].id);
  assert.equal(del.error, null);
  assert.equal(del.status, 204);
  assert.deepEqual((await ada.supabase.from('health_metrics').select('*')).data, []);
});

test('or filters, exact counts and ranges as postgrest-js sends them', async () => {
  const ada = await signedIn();
  const rows = [60, 61, 62, 63, 64].map((v, i) => ({ kind: 'heart_rate', value: v, unit: '/min', recorded_at: at(30 + i) }));
  assert.equal((await ada.supabase.from('health_metrics').insert(rows)).error, null);
  const either = await ada.supabase.from('health_metrics').select('value').or('value.eq.60,value.gte.64').order('value');
  assert.equal(either.error, null);
  assert.deepEqual(either.data.map((r) => r.value), [60, 64]);
  const page = await ada.supabase.from('health_metrics').select('value', { count: 'exact' }).order('value').range(1, 2);
  assert.equal(page.error, null);
  assert.equal(page.count, 5);
  assert.equal(page.status, 206);
  assert.deepEqual(page.data.map((r) => r.value), [61, 62]);
  const head = await ada.supabase.from('health_metrics').select('*', { count: 'exact', head: true }).gt('value', 61);
  assert.equal(head.count, 3);
});

test('upsert merges on a unique key; ignoreDuplicates keeps the first', async () => {
  const ada = await signedIn();
  const sample = { kind: 'heart_rate', unit: '/min', recorded_at: at(40), source: 'watch' };
  const first = await ada.supabase.from('health_metrics')
    .upsert({ ...sample, value: 70 }, { onConflict: 'user_id,kind,recorded_at,source' }).select('value');
  assert.equal(first.error, null);
  const again = await ada.supabase.from('health_metrics')
    .upsert({ ...sample, value: 75 }, { onConflict: 'user_id,kind,recorded_at,source' }).select('value');
  assert.equal(again.error, null);
  assert.deepEqual(again.data, [{ value: 75 }]);
  const ignored = await ada.supabase.from('health_metrics')
    .upsert({ ...sample, value: 99 }, { onConflict: 'user_id,kind,recorded_at,source', ignoreDuplicates: true }).select('value');
  assert.equal(ignored.error, null);
  assert.deepEqual(ignored.data, []);
  assert.deepEqual((await ada.supabase.from('health_metrics').select('value')).data, [{ value: 75 }]);
});
