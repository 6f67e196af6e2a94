// Talking to the gateway. The session is in HttpOnly cookies the script cannot read; the
// script only ever sees users and samples. Every state change is a JSON POST with the
// X-Requested-With header the gateway's CSRF guard requires.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function raw(method, path, body) {
  const options = { method, credentials: 'same-origin', headers: { 'X-Requested-With': 'health-rls' } };
  if (body !== undefined) {
    options.headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch {
    throw new ApiError(0, 'network', 'The dashboard server cannot be reached. Check your connection and try again.');
  }
  let data = {};
  try {
    data = await response.json();
  } catch {
    // A body that is not JSON: the status still says what happened.
  }
  if (!response.ok) {
    throw new ApiError(response.status, data.code || 'error', data.error || `The server answered ${response.status}.`);
  }
  return data;
}

// One refresh at a time: the refresh token is single-use, so two parallel refreshes would
// present the same token twice (the database tolerates that only for a few seconds).
let refreshing = null;
export function refresh() {
  if (!refreshing) {
    refreshing = raw('POST', '/api/session/refresh', {}).finally(() => { refreshing = null; });
  }
  return refreshing;
}

// A request; when the access cookie is missing or refused, refresh once and try again.
export async function call(method, path, body) {
  try {
    return await raw(method, path, body);
  } catch (e) {
    if (e.status !== 401 || path.startsWith('/api/session/')) throw e;
    await refresh();
    return raw(method, path, body);
  }
}
