// The sharing panel. Sharing starts with an invitation to an email address (health.invite); the
// person who signs in with that address accepts it (health.accept_invitation makes the share) or
// declines it; the inviter revokes it before or after (the share ends with it). The shares
// themselves are listed (health.shares()), revoked (health.revoke_share) and read
// (health.shared_samples — which the owner then sees in the access log, health.my_access_log()).
// Nobody types a user id: the page keeps the ids it is given. Text goes in with textContent only.
import { call } from './api.js';

const $ = (id) => document.getElementById(id);
let notice = () => {};
let kindName = (code) => code;
let valueText = (s) => `${s.value} ${s.unit}`;

function item(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function button(text, cls, label, onClick) {
  const b = item('button', text, { type: 'button', class: cls, 'aria-label': label });
  b.addEventListener('click', onClick);
  return b;
}

const when = (ms) => new Date(ms).toLocaleString();
const day = (ms) => new Date(ms).toLocaleDateString();
const kindList = (kinds) => kinds.map(kindName).join(', ');

// The terms a share or invitation offers, in words: which samples (by time) and until when.
function terms(t) {
  let text = '';
  if (t.data_from && t.data_until) text += `, samples from ${day(t.data_from)} to ${day(t.data_until)}`;
  else if (t.data_from) text += `, samples from ${day(t.data_from)} on`;
  else if (t.data_until) text += `, samples until ${day(t.data_until)}`;
  if (t.expires_at) text += `, until ${day(t.expires_at)}`;
  return text;
}

// Who is on the other side of each share, where an invitation says (the share's own row only
// has user ids); a share given through the API by id shows that id.
let people = new Map();

function renderShares(shares) {
  const given = $('shares-given');
  const received = $('shares-received');
  given.replaceChildren();
  received.replaceChildren();
  for (const s of shares) {
    const kinds = kindList(s.kinds);
    const state = s.active ? 'active' : s.revoked_at ? 'revoked' : 'expired';
    const until = s.expires_at ? `, until ${day(s.expires_at)}` : '';
    const li = item('li', undefined, { 'data-share-id': s.id, 'data-state': state });
    if (!s.active) li.className = 'status-inactive';
    const other = s.direction === 'given' ? s.grantee_id : s.owner_id;
    const who = people.has(s.id) ? item('strong', people.get(s.id)) : item('code', other);
    if (s.direction === 'given') {
      li.append(`${kinds} with `, who, ` — ${state}${until}`);
      if (s.active) {
        li.append(button('Revoke', 'danger', `Revoke the ${kinds} share`,
          () => act(() => call('POST', '/api/shares/revoke', { id: s.id }), 'Share revoked.')));
      }
      given.append(li);
    } else {
      li.append(`${kinds} from `, who, ` — ${state}${until}`);
      if (s.active) li.append(button('View', 'secondary', `View the shared ${kinds}`, () => view(s.owner_id)));
      received.append(li);
    }
  }
  if (!given.children.length) given.append(item('li', 'None.'));
  if (!received.children.length) received.append(item('li', 'None.'));
}

function renderInvitations(invitations) {
  const sent = $('invitations-sent');
  const received = $('invitations-received');
  sent.replaceChildren();
  received.replaceChildren();
  for (const inv of invitations) {
    const kinds = kindList(inv.kinds);
    const li = item('li', undefined, { 'data-invitation-id': inv.id, 'data-status': inv.status });
    if (inv.status !== 'pending' && inv.status !== 'accepted') li.className = 'status-inactive';
    if (inv.direction === 'sent') {
      li.append(`${kinds} to `, item('strong', inv.email), ` — ${inv.status}${terms(inv)}`);
      if (inv.status === 'pending' || inv.status === 'accepted') {
        li.append(button('Revoke', 'danger', `Revoke the invitation to ${inv.email}`,
          () => act(() => call('POST', '/api/invitations/revoke', { id: inv.id }), 'Invitation revoked.')));
      }
      sent.append(li);
    } else {
      const answerBy = inv.status === 'pending' ? `; answer by ${day(inv.valid_until)}` : '';
      li.append(item('strong', inv.email), ` invites you to read ${kinds} — ${inv.status}${terms(inv)}${answerBy}`);
      if (inv.status === 'pending') {
        li.append(
          button('Accept', '', `Accept the invitation from ${inv.email}`,
            () => act(() => call('POST', '/api/invitations/accept', { id: inv.id }), 'Invitation accepted.')),
          button('Decline', 'secondary', `Decline the invitation from ${inv.email}`,
            () => act(() => call('POST', '/api/invitations/decline', { id: inv.id }), 'Invitation declined.')));
      }
      received.append(li);
    }
  }
  if (!sent.children.length) sent.append(item('li', 'None.'));
  if (!received.children.length) received.append(item('li', 'None.'));
}

function renderLog(log) {
  const body = $('access-log').querySelector('tbody');
  body.replaceChildren();
  for (const entry of log) {
    const tr = item('tr');
    tr.append(item('td', when(entry.at)), item('td', entry.grantee_email || entry.grantee_id),
      item('td', kindList(entry.kinds)), item('td', String(entry.rows)));
    body.append(tr);
  }
  if (!log.length) {
    const tr = item('tr');
    tr.append(item('td', 'Nobody has read your shared data.', { colspan: '4' }));
    body.append(tr);
  }
}

async function view(owner) {
  const box = $('shared-view');
  try {
    const { samples } = await call('POST', '/api/shared', { owner });
    const list = item('ul', undefined, { class: 'list' });
    for (const s of samples) {
      list.append(item('li', `${kindName(s.kind)}: ${valueText(s)} (${when(s.at)})`,
        { 'data-kind': s.kind, 'data-value': String(s.value) }));
    }
    if (!samples.length) list.append(item('li', 'Nothing shared in that window yet.'));
    box.replaceChildren(item('h3', 'Shared with you'), list);
  } catch (e) {
    // Refused (revoked or expired meanwhile): what was shown before must not stay on screen,
    // and the lists should say why.
    box.replaceChildren();
    notice(e.message);
    await load().catch(() => {});
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
  const [{ shares }, { invitations }, { access_log: log }] = await Promise.all([
    call('GET', '/api/shares'), call('GET', '/api/invitations'), call('GET', '/api/access-log')]);
  people = new Map(invitations.filter((i) => i.share_id).map((i) => [i.share_id, i.email]));
  renderShares(shares);
  renderInvitations(invitations);
  renderLog(log);
}

// kindName(code): "Heart rate"; valueText(sample): "72 bpm", as the rest of the page shows values.
export function init(showNotice, show) {
  notice = showNotice;
  ({ kindName, valueText } = show);
  $('invite-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const kinds = [...document.querySelectorAll('#invite-form input[name=kind]:checked')].map((c) => c.value);
    const days = $('expires').value.trim();
    const email = $('invitee').value.trim();
    const body = { email, kinds, expires_in_days: days ? Number(days) : null };
    // The same words whatever the address: the database does not say whether it has an account.
    const sent = `Invitation sent to ${email} — they will see it when they sign in with that address.`;
    act(async () => {
      await call('POST', '/api/invitations', body);
      $('invitee').value = '';
    }, sent);
  });
  // Invitations and shares change on the other person's side: look again when the tab comes back.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && document.body.dataset.view === 'signed-in') load().catch(() => {});
  });
}
