// The charts, inline SVG drawn here (no library, nothing from another host): the live
// heart-rate chart and the trend of a kind (min–max band and average). Every point carries what
// it shows as data attributes, so a test (or a screen reader's summary) checks what is shown
// without looking at pixels.
import { formatNumber, plainNumber } from './units.js';

const SVG = 'http://www.w3.org/2000/svg';
const W = 640, H = 240, LEFT = 44, RIGHT = 12, TOP = 12, BOTTOM = 28;
const HOUR = 3600 * 1000;

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

// points: [{id, value, at}] (at in ms since the epoch); shows those of the last hour before `now`.
// `label(value)` is the value as the page shows it ("72 bpm").
export function drawChart(container, points, label = String, now = Date.now()) {
  const shown = points.filter((p) => p.at > now - HOUR && p.at <= now + 60_000).sort((a, b) => a.at - b.at);
  const values = shown.map((p) => p.value);
  const lo = Math.min(50, ...values) - 5;
  const hi = Math.max(110, ...values) + 5;
  const x = (at) => LEFT + ((at - (now - HOUR)) / HOUR) * (W - LEFT - RIGHT);
  const y = (v) => TOP + (1 - (v - lo) / (hi - lo)) * (H - TOP - BOTTOM);

  const last = shown[shown.length - 1];
  const summary = last
    ? `Heart rate over the last hour: ${shown.length} samples, latest ${label(last.value)} at ${clock(last.at)}`
    : 'Heart rate over the last hour: no samples';
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': summary });

  for (let v = Math.ceil(lo / 20) * 20; v <= hi; v += 20) {
    svg.append(el('line', { class: 'grid', x1: LEFT, x2: W - RIGHT, y1: y(v), y2: y(v) }));
    svg.append(el('text', { class: 'tick', x: LEFT - 6, y: y(v) + 4, 'text-anchor': 'end' }, String(v)));
  }
  for (let m = 60; m >= 0; m -= 15) {
    const at = now - m * 60_000;
    svg.append(el('text', { class: 'tick', x: x(at), y: H - 8, 'text-anchor': 'middle' }, m ? `−${m} min` : 'now'));
  }
  svg.append(el('line', { class: 'axis', x1: LEFT, x2: LEFT, y1: TOP, y2: H - BOTTOM }));
  svg.append(el('line', { class: 'axis', x1: LEFT, x2: W - RIGHT, y1: H - BOTTOM, y2: H - BOTTOM }));

  if (shown.length === 0) {
    svg.append(el('text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'No heart rate in the last hour'));
  } else {
    svg.append(el('polyline', { class: 'hr-line', points: shown.map((p) => `${x(p.at)},${y(p.value)}`).join(' ') }));
    for (const p of shown) {
      const dot = el('circle', { class: 'point', cx: x(p.at), cy: y(p.value), r: 3.5,
        'data-id': p.id, 'data-value': p.value, 'data-at': p.at });
      dot.append(el('title', {}, `${label(p.value)} at ${clock(p.at)}`));
      svg.append(dot);
    }
  }
  container.replaceChildren(svg);
  container.dataset.count = String(shown.length);
  container.dataset.latest = last ? String(last.value) : '';
}

// Ticks of a value axis: a round step (1, 2 or 5 × 10^k), never finer than the shown decimals.
function valueTicks(lo, hi, precision) {
  const finest = 10 ** -precision;
  const raw = Math.max((hi - lo) / 4, finest);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw - 1e-12);
  const first = Math.floor(lo / step) * step;
  const ticks = [];
  for (let v = first; v <= hi + step * 1e-9; v += step) ticks.push(v);
  if (ticks[ticks.length - 1] < hi) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

// Calendar-aligned times to label on the time axis, in the browser's zone (the tz the page asks
// the summary for), with their text.
function timeTicks(view, from, last) {
  const fmt = (opts) => new Intl.DateTimeFormat(undefined, opts);
  const t = new Date(from);
  let next;
  let text;
  if (view === 'hour') {
    t.setMinutes(Math.ceil(t.getMinutes() / 15) * 15, 0, 0);
    next = (d) => d.setMinutes(d.getMinutes() + 15);
    text = fmt({ hour: '2-digit', minute: '2-digit' });
  } else if (view === 'day') {
    next = (d) => d.setHours(d.getHours() + 4);
    text = fmt({ hour: '2-digit', minute: '2-digit' });
  } else if (view === 'week') {
    next = (d) => d.setDate(d.getDate() + 1);
    text = fmt({ weekday: 'short', day: 'numeric' });
  } else if (view === 'month') {
    next = (d) => d.setDate(d.getDate() + 5);
    text = fmt({ month: 'short', day: 'numeric' });
  } else {
    t.setDate(1);
    t.setMonth(t.getMonth() + 1);
    next = (d) => d.setMonth(d.getMonth() + 1);
    text = fmt({ month: 'short' });
  }
  const ticks = [];
  for (; t.getTime() <= last; next(t)) ticks.push({ at: t.getTime(), text: text.format(t) });
  return ticks;
}

// The trend of one kind. buckets: [{start, n, min, avg, max}] in the canonical unit (start in ms);
// o: {view, from, last (start of the newest bucket the range can hold), step (a bucket's nominal
// length in ms; gaps longer than 1.5 steps break the band), title, p (units.presentation)}.
export function drawTrend(container, buckets, o) {
  const { p } = o;
  const pts = buckets.map((b) => ({ start: b.start, n: b.n,
    min: p.convert(b.min), avg: p.convert(b.avg), max: p.convert(b.max) }));
  const number = (v) => formatNumber(v, p.precision);
  const span = Math.max(o.last - o.from, 1);
  const x = (at) => LEFT + ((at - o.from) / span) * (W - LEFT - RIGHT);

  let lo = Math.min(...pts.map((q) => q.min));
  let hi = Math.max(...pts.map((q) => q.max));
  if (!pts.length) [lo, hi] = [0, 1];
  if (hi - lo < 10 ** -p.precision) [lo, hi] = [lo - 10 ** -p.precision, hi + 10 ** -p.precision];
  const ticks = valueTicks(lo, hi, p.precision);
  [lo, hi] = [ticks[0], ticks[ticks.length - 1]];
  const y = (v) => TOP + (1 - (v - lo) / (hi - lo)) * (H - TOP - BOTTOM);

  const all = pts.length ? `average ${number(pts.reduce((s, q) => s + q.avg * q.n, 0) / pts.reduce((s, q) => s + q.n, 0))}` : '';
  const summary = pts.length
    ? `${o.title}: ${pts.length} points, ${all} ${p.unit} (lowest ${number(lo)}, highest ${number(hi)})`
    : `${o.title}: no samples`;
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': summary });

  for (const v of ticks) {
    svg.append(el('line', { class: 'grid', x1: LEFT, x2: W - RIGHT, y1: y(v), y2: y(v) }));
    svg.append(el('text', { class: 'tick', x: LEFT - 6, y: y(v) + 4, 'text-anchor': 'end' }, number(v)));
  }
  svg.append(el('text', { class: 'tick unit', x: LEFT + 4, y: TOP + 10 }, p.unit));
  for (const t of timeTicks(o.view, o.from, o.last)) {
    svg.append(el('text', { class: 'tick', x: x(t.at), y: H - 8, 'text-anchor': 'middle' }, t.text));
  }
  svg.append(el('line', { class: 'axis', x1: LEFT, x2: LEFT, y1: TOP, y2: H - BOTTOM }));
  svg.append(el('line', { class: 'axis', x1: LEFT, x2: W - RIGHT, y1: H - BOTTOM, y2: H - BOTTOM }));

  if (!pts.length) {
    svg.append(el('text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'No samples in this range'));
  }
  // Runs of neighbouring buckets: the band and the line are not drawn across a gap.
  const runs = [];
  pts.forEach((q, i) => {
    if (i === 0 || q.start - pts[i - 1].start > 1.5 * o.step) runs.push([]);
    runs[runs.length - 1].push(q);
  });
  for (const run of runs) {
    // A lone bucket's band is a narrow bar; a run's is its max line, then its min line back.
    const edge = run.length > 1 ? run.map((q) => [x(q.start), q])
      : [[x(run[0].start) - 2, run[0]], [x(run[0].start) + 2, run[0]]];
    const band = [...edge.map(([px, q]) => `${px},${y(q.max)}`), ...edge.reverse().map(([px, q]) => `${px},${y(q.min)}`)];
    svg.append(el('polygon', { class: 'band', points: band.join(' ') }));
    svg.append(el('polyline', { class: 'avg-line', points: run.map((q) => `${x(q.start)},${y(q.avg)}`).join(' ') }));
  }
  const when = new Intl.DateTimeFormat(undefined, o.view === 'hour' || o.view === 'day'
    ? { weekday: 'short', hour: '2-digit', minute: '2-digit' }
    : { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' });
  for (const q of pts) {
    const dot = el('circle', { class: 'avg', cx: x(q.start), cy: y(q.avg), r: pts.length > 60 ? 2 : 3,
      'data-start': q.start, 'data-n': q.n, 'data-min': plainNumber(q.min, p.precision),
      'data-avg': plainNumber(q.avg, p.precision), 'data-max': plainNumber(q.max, p.precision) });
    const range = q.n > 1 ? ` (${number(q.min)}–${number(q.max)}, ${q.n} samples)` : '';
    const prefix = o.view === 'year' ? 'week of ' : '';
    dot.append(el('title', {}, `${prefix}${when.format(q.start)}: ${q.n > 1 ? 'average ' : ''}${number(q.avg)} ${p.unit}${range}`));
    svg.append(dot);
  }
  container.replaceChildren(svg);
  container.dataset.count = String(pts.length);
  container.dataset.unit = p.unit;
}
