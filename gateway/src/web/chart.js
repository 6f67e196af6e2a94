// The heart-rate chart: an inline SVG drawn here (no library, nothing from another host).
// Every point carries its sample's id and value as data attributes, so a test (or a screen
// reader's summary) checks what is shown without looking at pixels.

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
export function drawChart(container, points, now = Date.now()) {
  const shown = points.filter((p) => p.at > now - HOUR && p.at <= now + 60_000).sort((a, b) => a.at - b.at);
  const values = shown.map((p) => p.value);
  const lo = Math.min(50, ...values) - 5;
  const hi = Math.max(110, ...values) + 5;
  const x = (at) => LEFT + ((at - (now - HOUR)) / HOUR) * (W - LEFT - RIGHT);
  const y = (v) => TOP + (1 - (v - lo) / (hi - lo)) * (H - TOP - BOTTOM);

  const last = shown[shown.length - 1];
  const summary = last
    ? `Heart rate over the last hour: ${shown.length} samples, latest ${last.value} beats per minute at ${clock(last.at)}`
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
      dot.append(el('title', {}, `${p.value} /min at ${clock(p.at)}`));
      svg.append(dot);
    }
  }
  container.replaceChildren(svg);
  container.dataset.count = String(shown.length);
  container.dataset.latest = last ? String(last.value) : '';
}
