// The trends card: one kind over the last hour, day, week, month or year, as health.summary
// buckets it in the browser's time zone (the raw samples for the hour). What each view shows is
// in docs/dashboard.md; the ranges are computed here, in local time, and sent as instants.
import { call } from './api.js';
import { drawTrend } from './chart.js';

const $ = (id) => document.getElementById(id);
const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

// The browser's IANA zone: the page's local time, and the one the buckets are cut in.
export const TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

// A view's range: samples from `from` on, in buckets of `bucket` (null: every sample); `last` is
// the start of the newest bucket the range holds (the right end of the chart); `step` a bucket's
// nominal length.
export function range(view, now = new Date()) {
  const midnight = new Date(now);
  midnight.setHours(0, 0, 0, 0);
  const daysBack = (start, days) => {
    const d = new Date(start);
    d.setDate(d.getDate() - days); // calendar days: a day with a clock change is 23 or 25 hours
    return d;
  };
  if (view === 'hour') return { bucket: null, from: now.getTime() - HOUR, last: now.getTime(), step: Infinity };
  if (view === 'day') {
    const hour = new Date(now);
    hour.setMinutes(0, 0, 0);
    return { bucket: 'hour', from: hour.getTime() - 23 * HOUR, last: hour.getTime(), step: HOUR };
  }
  if (view === 'week') return { bucket: 'day', from: daysBack(midnight, 6).getTime(), last: midnight.getTime(), step: DAY };
  if (view === 'month') return { bucket: 'day', from: daysBack(midnight, 29).getTime(), last: midnight.getTime(), step: DAY };
  const monday = daysBack(midnight, (midnight.getDay() + 6) % 7); // ISO weeks start on Monday, as the summary's
  return { bucket: 'week', from: daysBack(monday, 51 * 7).getTime(), last: monday.getTime(), step: 7 * DAY };
}

const TITLES = { hour: 'last hour, every sample', day: 'last 24 hours, by hour', week: 'last 7 days, by day',
  month: 'last 30 days, by day', year: 'last 52 weeks, by week' };

let ctx = { kinds: new Map(), presentation: null, notice: () => {} };
const selected = { kind: null, view: 'day' };
let generation = 0;

export function init({ presentation, notice }) {
  ctx = { ...ctx, presentation, notice };
  $('trend-kind').addEventListener('change', () => {
    selected.kind = $('trend-kind').value;
    load();
  });
  for (const b of document.querySelectorAll('#trend-views button')) {
    b.addEventListener('click', () => {
      selected.view = b.dataset.view;
      load();
    });
  }
}

// kinds: /api/kinds's list. The selector offers the kinds the user has samples of.
export function setKinds(kinds) {
  ctx.kinds = new Map(kinds.map((k) => [k.code, k]));
  const mine = kinds.filter((k) => k.has_samples);
  const select = $('trend-kind');
  select.replaceChildren(...mine.map((k) => {
    const o = document.createElement('option');
    o.value = k.code;
    o.textContent = k.display;
    return o;
  }));
  if (!mine.some((k) => k.code === selected.kind)) {
    selected.kind = (mine.find((k) => k.code === 'heart_rate') || mine[0] || {}).code || null;
  }
  select.value = selected.kind || '';
  $('trend-empty').hidden = mine.length > 0;
  $('trend-controls').hidden = mine.length === 0;
  $('trend-chart').hidden = mine.length === 0;
}

export function knows(kind) {
  return ctx.kinds.get(kind)?.has_samples === true;
}

// Read the selected kind and view again and draw it; a slower earlier answer is dropped.
export async function load() {
  for (const b of document.querySelectorAll('#trend-views button')) {
    b.setAttribute('aria-pressed', String(b.dataset.view === selected.view));
  }
  const kind = ctx.kinds.get(selected.kind);
  if (!kind || document.body.dataset.view !== 'signed-in') return;
  const mine = ++generation;
  const r = range(selected.view);
  const from = new Date(r.from).toISOString();
  const q = (params) => new URLSearchParams(params).toString();
  try {
    let buckets;
    if (r.bucket) {
      ({ buckets } = await call('GET', `/api/summary?${q({ kind: kind.code, bucket: r.bucket, from, tz: TZ })}`));
    } else {
      const { samples } = await call('GET', `/api/samples?${q({ kind: kind.code, from })}`);
      buckets = samples.map((s) => ({ start: s.at, n: 1, min: s.value, avg: s.value, max: s.value }));
    }
    if (mine !== generation) return;
    const chart = $('trend-chart');
    drawTrend(chart, buckets, { ...r, view: selected.view, title: `${kind.display}, ${TITLES[selected.view]}`,
      p: ctx.presentation(kind.code) });
    Object.assign(chart.dataset, { kind: kind.code, view: selected.view, bucket: r.bucket || 'sample',
      from: String(r.from), tz: TZ });
    $('trend-title').textContent = `${kind.display}, ${TITLES[selected.view]}`;
  } catch (e) {
    if (mine === generation) ctx.notice(e.message);
  }
}

// New samples arrived: redraw when they are of the kind shown (at most every few seconds: a
// wearable may send a sample a second).
let pending = null;
export function changed(kinds) {
  if (!kinds.includes(selected.kind) || pending) return;
  pending = setTimeout(() => {
    pending = null;
    load();
  }, 2000);
}
