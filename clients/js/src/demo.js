// The seed's app flow with supabase-js, as a readable transcript (demo/09-supabase-js.sh).
import { newApp } from './app.js';

const [url, key] = [process.env.SUPABASE_URL, process.env.SUPABASE_PUBLISHABLE_KEY];
const email = 'maya@example.com';
const password = 'ride the bus to the lake';
const say = (...a) => console.log('  ' + a.join(' '));

const phone = await newApp(url, key);
let r = await phone.supabase.auth.signUp({ email, password });
say('signUp:', r.error ? r.error.message : `user ${r.data.user.id.slice(0, 8)}…, session ${r.data.session}`);
r = await phone.supabase.auth.signUp({ email, password });
say('signUp again (same email):', r.error ? r.error.message : `same shape, another id, session ${r.data.session} — nothing revealed`);
r = await phone.supabase.auth.signInWithPassword({ email, password: 'a wrong password' });
say('signInWithPassword, wrong password:', `${r.error.status} ${r.error.code}: ${r.error.message}`);
r = await phone.supabase.auth.signInWithPassword({ email, password });
say('signInWithPassword:', `token_type ${r.data.session.token_type}, expires_in ${r.data.session.expires_in} s, user ${r.data.user.email}`);
const blob = [...phone.storage.backing.values()][0];
say('what the storage holds (AES-256-GCM, key kept apart):', `${blob.slice(0, 32)}… (${blob.length} base64 chars)`);
r = await phone.supabase.auth.getUser();
say('getUser:', r.data.user.email, r.data.user.role);
const usedRefresh = (await phone.supabase.auth.getSession()).data.session.refresh_token;
r = await phone.supabase.auth.refreshSession();
say('refreshSession:', r.error ? r.error.message : 'a new pair (the refresh token is single-use)');
const laptop = await newApp(url, key);
await laptop.supabase.auth.signInWithPassword({ email, password });
r = await laptop.supabase.auth.signOut({ scope: 'others' });
say("signOut({scope: 'others'}) on the laptop:", r.error ? r.error.message : 'ok');
r = await phone.supabase.auth.getUser();
say('the phone afterwards:', r.error ? `${r.error.status} ${r.error.code ?? r.error.name}` : 'still signed in');
r = await laptop.supabase.auth.getUser();
say('the laptop afterwards:', r.error ? r.error.message : `still signed in as ${r.data.user.email}`);
const replay = await (await newApp(url, key)).supabase.auth.refreshSession({ refresh_token: usedRefresh });
say("the phone's old refresh token, replayed:", replay.error ? `${replay.error.status} ${replay.error.code ?? replay.error.name} (its session was ended)` : 'accepted?!');

// Realtime: the laptop subscribes to its own inserts; another person subscribes with a filter
// naming Maya's id and hears nothing.
const heard = [];
const closed = new Set();
const subscribed = (app, name, binding, sink) => new Promise((resolve, reject) => {
  app.supabase.channel(name).on('postgres_changes', binding, (c) => sink.push(c))
    .subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve();
      else if (status === 'CLOSED') closed.add(name);
      else if (status === 'CHANNEL_ERROR') reject(err);
    });
});
const mayaId = (await laptop.supabase.auth.getUser()).data.user.id;
await subscribed(laptop, 'maya-live', { event: 'INSERT', schema: 'public', table: 'health_metrics' }, heard);
const spy = await newApp(url, key);
await spy.supabase.auth.signUp({ email: 'spy@example.com', password });
await spy.supabase.auth.signInWithPassword({ email: 'spy@example.com', password });
const spied = [];
await subscribed(spy, 'spy', { event: '*', schema: 'public', table: 'health_metrics', filter: `user_id=eq.${mayaId}` }, spied);
say('channel subscribed (laptop: own inserts; a spy: filter user_id=eq.<maya>)');
r = await laptop.supabase.from('health_metrics')
  .insert([62, 64, 71].map((v, i) => ({ kind: 'heart_rate', value: v, unit: '/min', recorded_at: new Date(Date.UTC(2026, 11, 4, 7, i)).toISOString() })))
  .select('id, value');
say('insert 3 heart-rate samples:', r.error ? r.error.message : `${r.status}, ids ${r.data.map((x) => x.id).join(', ')}`);
for (let i = 0; i < 100 && heard.length < 3; i++) await new Promise((res) => setTimeout(res, 20));
say('the laptop heard:', heard.map((c) => `${c.eventType} ${c.new.value} /min`).join(', '));
r = await laptop.supabase.from('health_metrics').select('value', { count: 'exact' }).gte('value', 63).order('value');
say('read back value >= 63:', r.data.map((x) => x.value).join(', '), `(count ${r.count})`);
r = await laptop.supabase.from('health_metrics').delete();
say('delete() without a filter:', `${r.status} ${r.error.code}: ${r.error.message}`);
await new Promise((res) => setTimeout(res, 300));
say('the spy heard:', spied.length === 0 ? 'nothing' : `${spied.length} events?!`);
await laptop.supabase.auth.signOut();
for (let i = 0; i < 100 && !closed.has('maya-live'); i++) await new Promise((res) => setTimeout(res, 20));
say('signOut: the gateway', closed.has('maya-live') ? 'closed the channel (the session is gone)' : 'kept the channel open?!');
await spy.supabase.removeAllChannels();
process.exit(0);
