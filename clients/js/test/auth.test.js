// supabase-js's auth client, unmodified, against health-rls-gateway's /auth/v1 (scripts/js-tests
// starts a cluster with health_rls and the gateway, and sets SUPABASE_URL and
// SUPABASE_PUBLISHABLE_KEY). Every check is what an app developer relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { newApp } from '../src/app.js';

const URL = process.env.SUPABASE_URL;
const KEY = process.env.SUPABASE_PUBLISHABLE_KEY;
const ALLOWED_ORIGIN = process.env.SUPABASE_TEST_ORIGIN;
assert.ok(URL && KEY, 'run through scripts/js-tests (SUPABASE_URL, SUPABASE_PUBLISHABLE_KEY)');

const person = () => ({ email: `js-${randomUUID()}@example.com`, password: 'correct horse battery' });

test('a request without the publishable key is 401 with a JSON error, a wrong key too', async () => {
  const none = await fetch(`${URL}/auth/v1/.well-known/jwks.json`);
  assert.equal(none.status, 401);
  assert.match((await none.json()).message, /No API key/);
  const wrong = await fetch(`${URL}/auth/v1/.well-known/jwks.json`, { headers: { apikey: `${KEY}x` } });
  assert.equal(wrong.status, 401);
  const right = await fetch(`${URL}/auth/v1/.well-known/jwks.json`, { headers: { apikey: KEY } });
  assert.equal(right.status, 200);
  assert.ok(Array.isArray((await right.json()).keys));
});

test('sign-up returns a user and no session, the same for an email that already has an account', async () => {
  const { supabase } = await newApp(URL, KEY);
  const p = person();
  const first = await supabase.auth.signUp(p);
  assert.equal(first.error, null);
  assert.equal(first.data.session, null);
  assert.equal(first.data.user.email, p.email);
  const again = await supabase.auth.signUp(p);
  assert.equal(again.error, null);
  assert.equal(again.data.session, null);
  assert.deepEqual(Object.keys(again.data.user).sort(), Object.keys(first.data.user).sort());
  assert.notEqual(again.data.user.id, first.data.user.id, 'a second sign-up reveals nothing about the first');
});

test('a short password is refused with weak_password', async () => {
  const { supabase } = await newApp(URL, KEY);
  const { error } = await supabase.auth.signUp({ email: `js-${randomUUID()}@example.com`, password: 'short' });
  assert.equal(error.status, 422);
  assert.equal(error.code, 'weak_password');
});

test('sign-in keeps the session in encrypted storage; getUser is the signed-in user', async () => {
  const { supabase, storage } = await newApp(URL, KEY);
  const p = person();
  await supabase.auth.signUp(p);
  const { data, error } = await supabase.auth.signInWithPassword(p);
  assert.equal(error, null);
  assert.ok(data.session.access_token && data.session.refresh_token);
  assert.equal(data.session.token_type, 'bearer');
  assert.equal(data.user.email, p.email);
  const stored = [...storage.backing.values()].join('');
  assert.ok(stored.length > 0, 'the session is stored');
  assert.ok(!stored.includes(data.session.access_token) && !stored.includes(data.session.refresh_token),
    'the stored blob carries no token in clear');
  const me = await supabase.auth.getUser();
  assert.equal(me.error, null);
  assert.equal(me.data.user.id, data.user.id);
  assert.equal(me.data.user.email, p.email);
});

test('a wrong password and an unknown email get the same invalid_credentials', async () => {
  const { supabase } = await newApp(URL, KEY);
  const p = person();
  await supabase.auth.signUp(p);
  const wrong = await supabase.auth.signInWithPassword({ email: p.email, password: 'not the password' });
  const unknown = await supabase.auth.signInWithPassword({ email: `nobody-${randomUUID()}@example.com`, password: p.password });
  for (const r of [wrong, unknown]) {
    assert.equal(r.data.session, null);
    assert.equal(r.error.status, 400);
    assert.equal(r.error.code, 'invalid_credentials');
    assert.equal(r.error.message, 'Invalid login credentials');
  }
});

test('refreshSession rotates the refresh token; the used one is refused, and so is the session then', async () => {
  const { supabase } = await newApp(URL, KEY);
  const p = person();
  await supabase.auth.signUp(p);
  const { data: signedIn } = await supabase.auth.signInWithPassword(p);
  const first = signedIn.session.refresh_token;
  const { data: refreshed, error } = await supabase.auth.refreshSession();
  assert.equal(error, null);
  assert.ok(refreshed.session.refresh_token !== first, 'a new refresh token');
  assert.ok(refreshed.session.access_token, 'and an access token');
  // A thief replays the used token (scripts/js-tests sets health_rls.refresh_reuse_interval = 0,
  // so no retry grace applies): refused, and the whole session is revoked (reuse detection).
  const thief = await newApp(URL, KEY);
  const replay = await thief.supabase.auth.refreshSession({ refresh_token: first });
  assert.equal(replay.data.session, null);
  assert.equal(replay.error.status, 400);
  assert.equal(replay.error.code, 'refresh_token_already_used');
  const after = await supabase.auth.refreshSession();
  assert.ok(after.error, 'the legitimate holder is signed out too: the session was revoked');
});

test('signOut (global) makes the old access token useless', async () => {
  const { supabase } = await newApp(URL, KEY);
  const p = person();
  await supabase.auth.signUp(p);
  const { data } = await supabase.auth.signInWithPassword(p);
  const old = data.session.access_token;
  const { error } = await supabase.auth.signOut();
  assert.equal(error, null);
  const r = await fetch(`${URL}/auth/v1/user`, { headers: { apikey: KEY, authorization: `Bearer ${old}` } });
  assert.equal(r.status, 401);
  assert.equal((await r.json()).error_code, 'bad_jwt');
});

test("signOut({scope: 'others'}) ends the other devices' sessions and keeps this one", async () => {
  const p = person();
  const phone = await newApp(URL, KEY);
  await phone.supabase.auth.signUp(p);
  await phone.supabase.auth.signInWithPassword(p);
  const laptop = await newApp(URL, KEY);
  await laptop.supabase.auth.signInWithPassword(p);
  const { error } = await laptop.supabase.auth.signOut({ scope: 'others' });
  assert.equal(error, null);
  assert.equal((await laptop.supabase.auth.getUser()).error, null, 'this device stays signed in');
  const phoneToken = (await phone.supabase.auth.getSession()).data.session.access_token;
  const r = await fetch(`${URL}/auth/v1/user`, { headers: { apikey: KEY, authorization: `Bearer ${phoneToken}` } });
  assert.equal(r.status, 401, 'the other device is signed out');
});

test('getUser without a session, or with the publishable key as bearer, is 401', async () => {
  const r = await fetch(`${URL}/auth/v1/user`, { headers: { apikey: KEY, authorization: `Bearer ${KEY}` } });
  assert.equal(r.status, 401);
  assert.equal((await r.json()).error_code, 'no_authorization');
});

test('CORS: an allowed origin is answered, another origin gets no CORS headers', async () => {
  const pre = await fetch(`${URL}/auth/v1/token?grant_type=password`, {
    method: 'OPTIONS',
    headers: { origin: ALLOWED_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'apikey, content-type' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), ALLOWED_ORIGIN);
  assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
  const other = await fetch(`${URL}/auth/v1/token?grant_type=password`, {
    method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
  });
  assert.equal(other.headers.get('access-control-allow-origin'), null);
  const get = await fetch(`${URL}/auth/v1/.well-known/jwks.json`, { headers: { apikey: KEY, origin: ALLOWED_ORIGIN } });
  assert.equal(get.headers.get('access-control-allow-origin'), ALLOWED_ORIGIN);
});
