// Calls to the two REST APIs, both on the console's own origin: the
// platform's /platform/api and the gateway's /trueportai-services/api/v1
// (routed to the gateway by the edge, or relayed by the platform where
// there is none). Tokens travel in the Authorization header only, never
// in a URL; no cookie is sent (credentials: 'omit').

import * as session from './session.js';

export const P = '/platform/api';
export const G = '/trueportai-services/api/v1';

/** An API error: the envelope's code, message and the field it names. */
export class ApiError extends Error {
  constructor(status, code, message, details, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
    this.field = this.details.field || null;
    this.requestId = requestId || '';
  }
}

function tokenFor(path, auth) {
  if (auth === 'none') return null;
  if (auth === 'global') return session.globalToken();
  if (auth === 'scoped') return session.scopedToken();
  if (path.startsWith(`${P}/service/`) || path.startsWith(`${G}/`)) return session.scopedToken();
  return session.globalToken();
}

/**
 * call('GET', `${G}/keys`, {query: {limit: 50}}) → the decoded answer.
 * auth: 'auto' (scoped for service and gateway routes, else global),
 * 'global', 'scoped', 'none'.
 */
export async function call(method, path, { body, query, auth = 'auto' } = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    }
    const s = q.toString();
    if (s) url += `?${s}`;
  }
  const headers = { Accept: 'application/json' };
  const token = tokenFor(path, auth);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(url, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit', cache: 'no-store', redirect: 'error',
    });
  } catch (e) {
    throw new ApiError(0, 'network_error', 'The server could not be reached. Check your connection and try again.');
  }
  if (resp.status === 204) return null;
  let data = null;
  const text = await resp.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (resp.ok) return data;
  const e = (data && data.error) || {};
  let message = e.message || `The server answered ${resp.status}.`;
  if (resp.status === 429) {
    const after = resp.headers.get('Retry-After');
    message = `Too many requests${after ? `: try again in ${after} s` : ''}. ${e.message || ''}`.trim();
  }
  const err = new ApiError(resp.status, e.code || `http_${resp.status}`, message, e.details, e.request_id);
  // A token the API no longer takes (expired, revoked, tenant suspended)
  // ends the session; a refused sign-in does not.
  if (resp.status === 401 && token) {
    session.end('Your session ended (the server no longer accepts its token). Sign in again.');
  }
  throw err;
}

/** Every page of a list (the overview's envelope), up to max items. */
export async function all(path, { query = {}, max = 1000 } = {}) {
  const items = [];
  for (let offset = 0; offset < max;) {
    const page = await call('GET', path, { query: { ...query, limit: 200, offset } });
    items.push(...page.items);
    offset += page.items.length;
    if (!page.items.length || offset >= page.total) break;
  }
  return items;
}

let config = null;
/** The console's settings from the platform (where SDKs reach the gateway). */
export async function consoleConfig() {
  if (!config) {
    config = fetch('/console/config.json', { credentials: 'omit', cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  }
  const c = await config;
  return { gatewayURL: c.gateway_url || location.origin };
}
