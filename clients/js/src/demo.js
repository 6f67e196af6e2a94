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
