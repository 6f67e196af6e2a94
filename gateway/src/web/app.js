// The page: signed out (sign in / create account) or signed in (chart, latest values, sharing).
// State lives in the database and the HttpOnly cookies; a reload starts over from /api/me.
import { call, ApiError } from './api.js';
import { drawChart } from './chart.js';
import { Live } from './live.js';
import * as shares from './shares.js';
import * as trends from './trends.js';
import { defaultSystem, presentation, show as showValue } from './units.js';

const $ = (id) => document.getElementById(id);

const state = { table: '', heart: new Map(), latest: new Map(), kinds: new Map() };

// Metric or US units: the person's choice, kept in this browser (the only thing the page stores,
// and only once chosen); until then what the browser's language suggests (en-US: US).
const SYSTEMS = ['metric', 'us'];
const stored = localStorage.getItem('units');
let system = SYSTEMS.includes(stored) ? stored : defaultSystem(navigator.language);

// How a kind's values are shown; a kind the catalog does not know (yet) shows its code's unit as is.
const presentationOf = (code, unit = '') => presentation(state.kinds.get(code) || { unit }, system);
const valueText = (code, value, unit) => showValue(value, presentationOf(code, unit));
const kindName = (code) => state.kinds.get(code)?.display || code;

async function loadKinds() {
  const { kinds } = await call('GET', '/api/kinds');
  state.kinds = new Map(kinds.map((k) => [k.code, k]));
  trends.setKinds(kinds);
}

function notice(text, kind = 'error') {
  const box = $('notice');
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = !text;
}

function show(view) {
  document.body.dataset.view = view;
  $('loading').hidden = true;
  $('signed-out').hidden = view !== 'signed-out';
  $('dashboard').hidden = view !== 'signed-in';
  $('who').hidden = view !== 'signed-in';
}

function signedOut(message) {
  live.close();
  state.heart.clear();
  state.latest.clear();
  show('signed-out');
  if (message) notice(message);
  $('email').focus();
}

function redraw() {
  drawChart($('hr-chart'), [...state.heart.values()], (v) => valueText('heart_rate', v, '/min'));
  const body = $('latest').querySelector('tbody');
  body.replaceChildren();
  for (const s of [...state.latest.values()].sort((a, b) => a.kind.localeCompare(b.kind))) {
    const tr = document.createElement('tr');
    tr.dataset.kind = s.kind;
    tr.dataset.value = String(s.value);
    for (const text of [kindName(s.kind), valueText(s.kind, s.value, s.unit), new Date(s.at).toLocaleString()]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    body.append(tr);
  }
  $('latest-empty').hidden = state.latest.size > 0;
}

function remember(s) {
  if (s.kind === 'heart_rate') state.heart.set(s.id, { id: s.id, value: s.value, at: s.at });
  const known = state.latest.get(s.kind);
  if (!known || s.at >= known.at) state.latest.set(s.kind, s);
}

// Snapshot first, then the stream from the snapshot's change-feed position: nothing in between is lost.
async function readSnapshot() {
  const d = await call('GET', '/api/dashboard');
  state.heart = new Map(d.heart_rate.map((p) => [p.id, p]));
  state.latest = new Map(d.latest.map((s) => [s.kind, s]));
  redraw();
  return d.after_seq;
}

async function loadSnapshot() {
  live.open(await readSnapshot());
}

// Events carry keys only; the values are read as the user (RLS) by id.
async function onChange(event) {
  if (event.table !== state.table || !Array.isArray(event.rows)) return;
  try {
    if (event.op === 'DELETE') {
      await readSnapshot(); // the latest value of a kind may now be an older sample
      await trends.load();
      return;
    }
    const ids = event.rows.map((r) => r.id).filter((id) => id !== undefined);
    if (!ids.length) return;
    const { samples } = await call('GET', `/api/samples?ids=${ids.join(',')}`);
    samples.forEach(remember);
    redraw();
    const kinds = [...new Set(samples.map((s) => s.kind))];
    if (kinds.some((k) => !trends.knows(k))) await loadKinds(); // a first sample of a kind
    trends.changed(kinds);
  } catch (e) {
    if (e.status === 401) signedOut(e.message);
    else notice(e.message);
  }
}

async function onEnded(reason) {
  if (reason === 'session revoked') {
    signedOut('You were signed out: this session was ended.');
    return;
  }
  try {
    if (reason === 'resync') {
      await loadSnapshot();
    } else {
      // The access token expired (or the cookie went): /api/me refreshes it, then resume
      // after the last event seen — the gateway replays what happened meanwhile.
      await call('GET', '/api/me');
      live.open(live.lastSeq);
    }
  } catch (e) {
    if (e.status === 401) signedOut(e.message);
    else {
      notice(`${e.message} Retrying…`);
      setTimeout(() => onEnded(reason), 3000);
    }
  }
}

const live = new Live({ onChange, onEnded, status: $('stream-status') });

async function enter() {
  const me = await call('GET', '/api/me');
  state.table = me.table;
  $('who-email').textContent = me.user.email || me.user.id;
  show('signed-in');
  await loadKinds();
  await loadSnapshot();
  await Promise.all([trends.load(), shares.load()]);
}

async function start() {
  try {
    await enter();
  } catch (e) {
    // "no_session": nobody signed in yet, nothing to apologise for.
    if (e instanceof ApiError && e.code === 'no_session') signedOut();
    else signedOut(e.message);
  }
}

$('auth-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const action = e.submitter && e.submitter.value === 'signup' ? 'signup' : 'signin';
  const email = $('email').value.trim();
  const password = $('password').value;
  if (!email || !password) {
    notice('Enter both an email address and a password.');
    return;
  }
  const buttons = document.querySelectorAll('#auth-form button');
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await call('POST', `/api/session/${action}`, { email, password });
    $('password').value = '';
    notice('');
    await enter();
  } catch (err) {
    notice(err.message);
    $('password').focus();
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
});

$('sign-out').addEventListener('click', async () => {
  live.close();
  try {
    await call('POST', '/api/session/signout', {});
    signedOut();
    notice('You are signed out.', 'info');
  } catch (e) {
    notice(e.message);
  }
});

$('units').value = system;
$('units').addEventListener('change', () => {
  system = $('units').value;
  localStorage.setItem('units', system);
  redraw();
  trends.load();
});

shares.init(notice, { kindName, valueText: (s) => valueText(s.kind, s.value, s.unit) });
trends.init({ presentation: (code) => presentationOf(code), notice });
// The last hour slides on: redraw each half minute even when nothing arrives.
setInterval(() => { if (document.body.dataset.view === 'signed-in') redraw(); }, 30_000);
start();
