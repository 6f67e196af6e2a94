// The sharing panel: give a share (health.share), list them (health.shares()), revoke
// (health.revoke_share), read what someone shared with you (health.shared_samples — which the
// owner then sees in the access log, health.my_access_log()). Text goes in with textContent only.
import { call } from './api.js';

const $ = (id) => document.getElementById(id);
let notice = () => {};
let describeSample = (s) => `${s.kind}: ${s.value} ${s.unit}`;

function item(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

const when = (ms) => new Date(ms).toLocaleString();

function describe(share) {
  const kinds = share.kinds.join(', ');
  const state = share.active ? 'active' : share.revoked_at ? 'revoked' : 'expired';
  const until = share.expires_at ? `, until ${new Date(share.expires_at).toLocaleDateString()}` : '';
  return { kinds, state, until };
}

function renderShares(shares) {
  const given = $('shares-given');
  const received = $('shares-received');
  given.replaceChildren();
  received.replaceChildren();
  for (const s of shares) {
    const { kinds, state, until } = describe(s);
    const li = item('li', undefined, { 'data-share-id': s.id, 'data-state': state });
    if (!s.active) li.className = 'status-inactive';
    if (s.direction === 'given') {
      li.append(`${kinds} with `, item('code', s.grantee_id), ` — ${state}${until}`);
      if (s.active) {
        const b = item('button', 'Revoke', { type: 'button', class: 'danger', 'aria-label': `Revoke the ${kinds} share` });
        b.addEventListener('click', () => act(() => call('POST', '/api/shares/revoke', { id: s.id }), 'Share revoked.'));
        li.append(b);
      }
      given.append(li);
    } else {
      li.append(`${kinds} from `, item('code', s.owner_id), ` — ${state}${until}`);
      if (s.active) {
        const b = item('button', 'View', { type: 'button', class: 'secondary', 'aria-label': `View the shared ${kinds}` });
        b.addEventListener('click', () => view(s.owner_id));
        li.append(b);
      }
      received.append(li);
    }
  }
  if (!given.children.length) given.append(item('li', 'None.'));
  if (!received.children.length) received.append(item('li', 'None.'));
}

function renderLog(log) {
  const body = $('access-log').querySelector('tbody');
  body.replaceChildren();
  for (const entry of log) {
    const tr = item('tr');
    tr.append(item('td', when(entry.at)), item('td', entry.grantee_email || entry.grantee_id),
      item('td', entry.kinds.join(', ')), item('td', String(entry.rows)));
    body.append(tr);
  }
  if (!log.length) {
    const tr = item('tr');
    tr.append(item('td', 'Nobody has read your shared data.', { colspan: '4' }));
    body.append(tr);
  }
}

async function view(owner) {
  try {
    const { samples } = await call('POST', '/api/shared', { owner });
    const box = $('shared-view');
    const list = item('ul', undefined, { class: 'list' });
    for (const s of samples) list.append(item('li', `${describeSample(s)} (${when(s.at)})`));
    if (!samples.length) list.append(item('li', 'Nothing shared in that window yet.'));
    box.replaceChildren(item('h3', 'Shared with you'), list);
  } catch (e) {
    notice(e.message);
  }
}

async function act(request, done) {
  try {
    await request();
    notice(done, 'info');
    await load();
  } catch (e) {
    notice(e.message);
  }
}

export async function load() {
  const [{ shares }, { access_log: log }] = await Promise.all([call('GET', '/api/shares'), call('GET', '/api/access-log')]);
  renderShares(shares);
  renderLog(log);
}

// describe(sample): "Heart rate: 72 bpm", as the rest of the page shows values.
export function init(showNotice, describe) {
  notice = showNotice;
  describeSample = describe;
  $('share-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const kinds = [...document.querySelectorAll('#share-form input[name=kind]:checked')].map((c) => c.value);
    const days = $('expires').value.trim();
    const body = { grantee: $('grantee').value.trim(), kinds, expires_in_days: days ? Number(days) : null };
    act(() => call('POST', '/api/shares', body), 'Shared.').then(() => { $('grantee').value = ''; });
  });
}
