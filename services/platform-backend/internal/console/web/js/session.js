// The signed-in session: the global token (sign-in), the scoped token (the
// chosen organisation and environment), the user and the role.
//
// Kept in sessionStorage: one browser tab, gone when the tab closes, never
// sent anywhere by the browser itself (no cookie, so no CSRF), readable by
// the console's own scripts only (the CSP admits no other script). The
// session ends when the global token expires, as the token does on the
// server; a scoped token expiring earlier is renewed from the global one.

const KEY = 'trueportai.console.session';
const listeners = new Set();
let timer = null;
let state = load();

function load() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) || 'null');
    if (s && s.global && s.global.exp > Date.now()) return s;
  } catch { /* a damaged entry is no session */ }
  sessionStorage.removeItem(KEY);
  return null;
}

function save() {
  if (state) sessionStorage.setItem(KEY, JSON.stringify(state));
  else sessionStorage.removeItem(KEY);
  schedule();
  for (const fn of listeners) fn(state);
}

/** Calls fn(state) on every change. */
export function onChange(fn) { listeners.add(fn); }

export function current() { return state; }

export function signedIn() { return !!(state && state.global && state.global.exp > Date.now()); }

export function hasTenant() { return signedIn() && !!(state.scoped && state.tenant); }

export function globalToken() { return signedIn() ? state.global.token : null; }

export function scopedToken() { return hasTenant() && state.scoped.exp > Date.now() ? state.scoped.token : null; }

const roles = ['viewer', 'member', 'admin', 'owner'];

/** Whether the current role is at least min (the API stays the guard). */
export function atLeast(min) {
  if (!hasTenant()) return false;
  return roles.indexOf(state.role) >= roles.indexOf(min);
}

export function isPlatformAdmin() { return signedIn() && !!(state.user && state.user.platform_admin); }

/** Starts a session from a login / OTP answer. */
export function start(login) {
  state = {
    global: { token: login.global_access_token, exp: Date.now() + login.expires_in * 1000 },
    user: login.user || null,
    scoped: null, tenant: null, role: null, env: null,
  };
  save();
}

export function setUser(user) {
  if (!state) return;
  state.user = user;
  save();
}

/** Takes a select-tenant / switch-environment answer. */
export function setScope(sel) {
  if (!state) return;
  state.scoped = { token: sel.scoped_access_token, exp: Date.now() + sel.expires_in * 1000 };
  state.tenant = sel.tenant;
  state.role = sel.role;
  state.env = sel.env;
  save();
}

export function clearScope() {
  if (!state) return;
  state.scoped = null; state.tenant = null; state.role = null; state.env = null;
  save();
}

let endReason = '';
/** Ends the session (sign out, expiry, a token the API refused). */
export function end(reason = '') {
  endReason = reason;
  state = null;
  save();
}

/** Why the last session ended, once. */
export function takeEndReason() {
  const r = endReason;
  endReason = '';
  return r;
}

// renew is set by main.js: renews the scoped token from the global one.
let renew = null;
export function setRenewer(fn) { renew = fn; }

function schedule() {
  clearTimeout(timer);
  if (!state || !state.global) return;
  const now = Date.now();
  const globalLeft = state.global.exp - now;
  const scopedLeft = state.scoped ? state.scoped.exp - now : Infinity;
  if (scopedLeft < globalLeft - 5000 && renew) {
    // Renew the scoped token 30 s before it expires.
    timer = setTimeout(async () => {
      try { await renew(); } catch { end('Your session expired. Sign in again.'); }
    }, Math.max(0, scopedLeft - 30000));
    return;
  }
  timer = setTimeout(() => end('Your session expired. Sign in again.'), Math.max(0, globalLeft));
}

schedule();
