// supabase-js's realtime client (realtime-js over `ws`), unmodified, against health-rls-gateway's
// /realtime/v1/websocket: each person hears only their own changes, values included; a channel
// filtered on another person's id hears nothing; signing out closes the channel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { newApp } from '../src/app.js';

const URL = process.env.SUPABASE_URL;
const KEY = process.env.SUPABASE_PUBLISHABLE_KEY;

async function signedIn() {
  const app = await newApp(URL, KEY);
  const p = { email: `live-${randomUUID()}@example.com`, password: 'correct horse battery' };
  await app.supabase.auth.signUp(p);
  const { data, error } = await app.supabase.auth.signInWithPassword(p);
  assert.equal(error, null);
  return { ...app, id: data.user.id };
}

const at = (minute) => new Date(Date.UTC(2026, 11, 2, 9, minute)).toISOString();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Subscribes and resolves once the server confirmed the bindings; `heard` collects every event.
function listen(app, name, binding) {
  const heard = [];
  const statuses = [];
  let subscribed;
  const ready = new Promise((resolve, reject) => { subscribed = { resolve, reject }; });
  const channel = app.supabase
    .channel(name)
    .on('postgres_changes', binding, (payload) => heard.push(payload))
    .subscribe((status, err) => {
      statuses.push(status);
      if (status === 'SUBSCRIBED') subscribed.resolve();
      else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') subscribed.reject(err ?? new Error(status));
    });
  return { channel, heard, statuses, ready };
}

async function until(what, check, ms = 5000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return;
    await sleep(25);
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('two people subscribed at once each hear only their own inserts, with the values', async () => {
  const [ada, bob] = await Promise.all([signedIn(), signedIn()]);
  const binding = { event: 'INSERT', schema: 'public', table: 'health_metrics' };
  const [a, b] = [listen(ada, 'ada-hr', binding), listen(bob, 'bob-hr', binding)];
  await Promise.all([a.ready, b.ready]);
  const [x, y] = await Promise.all([
    ada.supabase.from('health_metrics').insert({ kind: 'heart_rate', value: 64, unit: '/min', recorded_at: at(0) }),
    bob.supabase.from('health_metrics').insert([
      { kind: 'heart_rate', value: 97, unit: '/min', recorded_at: at(0) },
      { kind: 'heart_rate', value: 98, unit: '/min', recorded_at: at(1) },
    ]),
  ]);
  assert.equal(x.error, null);
  assert.equal(y.error, null);
  await until('both inserts heard', () => a.heard.length >= 1 && b.heard.length >= 2);
  await sleep(300); // anything extra would arrive by now
  assert.deepEqual(a.heard.map((e) => [e.eventType, e.table, e.new.value, e.new.user_id]),
    [['INSERT', 'health_metrics', 64, ada.id]]);
  assert.deepEqual(b.heard.map((e) => e.new.value).sort(), [97, 98]);
  assert.ok(b.heard.every((e) => e.new.user_id === bob.id && e.schema === 'public'));
  assert.equal(typeof a.heard[0].new.id, 'number', 'columns carry types: int8 is a number');
  await Promise.all([ada.supabase.removeAllChannels(), bob.supabase.removeAllChannels()]);
});

test("a subscription filtered on another person's id hears nothing of theirs", async () => {
  const [ada, mallory] = await Promise.all([signedIn(), signedIn()]);
  const spy = listen(mallory, 'spy', { event: '*', schema: 'public', table: 'health_metrics', filter: `user_id=eq.${ada.id}` });
  const own = listen(ada, 'own', { event: '*', schema: 'public', table: 'health_metrics', filter: `user_id=eq.${ada.id}` });
  await Promise.all([spy.ready, own.ready]);
  const ins = await ada.supabase.from('health_metrics')
    .insert({ kind: 'heart_rate', value: 71, unit: '/min', recorded_at: at(3) }).select('id');
  assert.equal(ins.error, null);
  await ada.supabase.from('health_metrics').update({ value: 72 }).eq('id', ins.data[0].id);
  // A record is read when its event is sent: let the update's be sent before the row goes.
  await until("ada's insert and update", () => own.heard.length >= 2);
  await ada.supabase.from('health_metrics').delete().eq('id', ins.data[0].id);
  await until("ada's three changes", () => own.heard.length >= 3);
  assert.deepEqual(own.heard.map((e) => e.eventType), ['INSERT', 'UPDATE', 'DELETE']);
  assert.equal(own.heard[1].new.value, 72, 'an update carries the new values');
  assert.equal(own.heard[2].old.id, ins.data[0].id, 'a delete carries the keys of the row');
  await sleep(500);
  assert.deepEqual(spy.heard, [], 'the spy heard nothing');
  await Promise.all([ada.supabase.removeAllChannels(), mallory.supabase.removeAllChannels()]);
});

test('a filter narrows one\'s own changes (kind=eq.steps hears no heart rate)', async () => {
  const ada = await signedIn();
  const steps = listen(ada, 'steps', { event: 'INSERT', schema: 'public', table: 'health_metrics', filter: 'kind=eq.steps' });
  await steps.ready;
  const { error } = await ada.supabase.from('health_metrics').insert([
    { kind: 'heart_rate', value: 60, unit: '/min', recorded_at: at(10) },
    { kind: 'steps', value: 1200, unit: '{steps}', recorded_at: at(10), ended_at: at(20) },
  ]);
  assert.equal(error, null);
  await until('the steps insert', () => steps.heard.length >= 1);
  await sleep(300);
  assert.deepEqual(steps.heard.map((e) => [e.new.kind, e.new.value]), [['steps', 1200]]);
  await ada.supabase.removeAllChannels();
});

test('signing out everywhere on one device closes the channel another device holds', async () => {
  const web = await signedIn();
  const phone = await newApp(URL, KEY);
  const { data: { session } } = await web.supabase.auth.getSession();
  const email = session.user.email;
  assert.equal((await phone.supabase.auth.signInWithPassword({ email, password: 'correct horse battery' })).error, null);
  const live = listen(web, 'web', { event: '*', schema: 'public', table: 'health_metrics' });
  await live.ready;
  assert.equal((await phone.supabase.auth.signOut({ scope: 'global' })).error, null);
  // The web app did nothing: the gateway saw the session revoked and closed the channel.
  await until('the server to close the channel', () => live.statuses.includes('CLOSED'), 5000);
});

test('signOut closes the channel, and the old token no longer reads', async () => {
  const ada = await signedIn();
  const token = (await ada.supabase.auth.getSession()).data.session.access_token;
  const live = listen(ada, 'until-signout', { event: '*', schema: 'public', table: 'health_metrics' });
  await live.ready;
  const { error } = await ada.supabase.auth.signOut();
  assert.equal(error, null);
  await until('the channel to close', () => live.statuses.includes('CLOSED') || live.statuses.includes('CHANNEL_ERROR'));
  const r = await fetch(`${URL}/rest/v1/health_metrics?select=*`, { headers: { apikey: KEY, Authorization: `Bearer ${token}` } });
  assert.equal(r.status, 401);
});

test('joining postgres_changes without a signed-in user is refused', async () => {
  const anon = await newApp(URL, KEY);
  const c = listen(anon, 'anon', { event: '*', schema: 'public', table: 'health_metrics' });
  await assert.rejects(c.ready, /signed-in user/);
  await anon.supabase.removeAllChannels();
});

test('the socket without the publishable key is refused', async () => {
  const ws = new WebSocket(`${URL.replace('http', 'ws')}/realtime/v1/websocket?vsn=2.0.0`);
  const status = await new Promise((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    ws.on('open', () => resolve('open'));
    ws.on('error', () => {});
  });
  assert.equal(status, 401);
  ws.terminate();
});
