// The console's shell and router. Routes live in the URL fragment
// (#/logs?status=4xx): the fragment never reaches a server, its logs or a
// Referer, so the tokens of mailed links (#/reset-password?token=…) stay
// in the browser, and they are taken out of the address bar once read.

import { h, replace, append, button, announce, select } from './dom.js';
import * as session from './session.js';
import { call, P } from './api.js';
import * as auth from './pages/auth.js';
import * as tenants from './pages/tenants.js';
import * as overview from './pages/overview.js';
import * as logs from './pages/logs.js';
import * as keys from './pages/keys.js';
import * as policies from './pages/policies.js';
import * as violations from './pages/violations.js';
import * as team from './pages/team.js';
import * as billing from './pages/billing.js';
import * as credentials from './pages/credentials.js';
import * as storage from './pages/storage.js';
import * as admin from './pages/admin.js';

// access: public (signed out), global (signed in), scoped (an organisation
// chosen; min is the role the API asks for), admin (platform admins).
const routes = [
  { path: 'signin', title: 'Sign in', access: 'public', render: auth.signIn },
  { path: 'signup', title: 'Create an account', access: 'public', render: auth.signUp },
  { path: 'forgot-password', title: 'Forgot password', access: 'public', render: auth.forgot },
  { path: 'reset-password', title: 'Choose a new password', access: 'any', render: auth.reset },
  { path: 'verify-email', title: 'Verify your address', access: 'global', render: auth.verify },
  { path: 'account', title: 'Account', access: 'global', render: auth.account },
  { path: 'tenants', title: 'Organisations', access: 'global', render: tenants.picker },
  { path: 'accept-invite', title: 'Accept an invitation', access: 'global', render: tenants.acceptInvite },
  { path: 'overview', title: 'Overview', access: 'scoped', min: 'member', nav: 'Overview', render: overview.render },
  { path: 'logs', title: 'Request log', access: 'scoped', min: 'member', nav: 'Request log', render: logs.render },
  { path: 'keys', title: 'API keys', access: 'scoped', min: 'member', nav: 'API keys', render: keys.render },
  { path: 'policies', title: 'Policies', access: 'scoped', min: 'member', nav: 'Policies', render: policies.render },
  { path: 'violations', title: 'Violations', access: 'scoped', min: 'member', nav: 'Violations', render: violations.render },
  { path: 'members', title: 'Members and invites', access: 'scoped', min: 'viewer', nav: 'Members', render: team.render },
  { path: 'billing', title: 'Plan and subscription', access: 'scoped', min: 'viewer', nav: 'Plan', render: billing.render },
  { path: 'credentials', title: 'Provider credentials', access: 'scoped', min: 'viewer', nav: 'Credentials', render: credentials.render },
  { path: 'storage', title: 'Storage settings', access: 'scoped', min: 'admin', nav: 'Storage', render: storage.render },
  { path: 'admin', title: 'Platform admin', access: 'admin', render: admin.stats },
  { path: 'admin/tenants', title: 'Tenants', access: 'admin', render: admin.tenants },
  { path: 'admin/tenant', title: 'Tenant', access: 'admin', render: admin.tenant },
  { path: 'admin/users', title: 'Users', access: 'admin', render: admin.users },
  { path: 'admin/configs', title: 'Global configs', access: 'admin', render: admin.configs },
  { path: 'admin/audit', title: 'Audit log', access: 'admin', render: admin.audit },
];

const AFTER_SIGNIN = 'trueportai.console.after';

/** The current route: path and query of the fragment. */
function parseHash() {
  const raw = location.hash.startsWith('#/') ? location.hash.slice(2) : '';
  const [path, q] = raw.split('?');
  return { path: decodeURIComponent(path || ''), query: new URLSearchParams(q || '') };
}

/** Goes to a route ("logs", {status: "4xx"}). */
export function navigate(path, query) {
  let s = `#/${path}`;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    if ([...q].length) s += `?${q}`;
  }
  if (location.hash === s) route();
  else location.hash = s;
}

/** Removes a secret (a mailed token) from the address bar and history. */
export function forgetQuery(path) {
  history.replaceState(null, '', `${location.pathname}#/${path}`);
}

function homeFor() {
  if (!session.signedIn()) return 'signin';
  if (!session.hasTenant()) return 'tenants';
  return session.atLeast('member') ? 'overview' : 'members';
}

let renderSeq = 0;

async function route() {
  const seq = ++renderSeq;
  const { path, query } = parseHash();
  let r = routes.find((x) => x.path === path);
  if (!r) { navigate(homeFor()); return; }
  if (r.access === 'public' && session.signedIn()) { navigate(homeFor()); return; }
  if ((r.access === 'global' || r.access === 'scoped' || r.access === 'admin') && !session.signedIn()) {
    if (r.path === 'verify-email' || r.path === 'accept-invite') sessionStorage.setItem(AFTER_SIGNIN, location.hash);
    navigate('signin');
    return;
  }
  if (r.access === 'scoped' && !session.hasTenant()) { navigate('tenants'); return; }
  if (r.access === 'admin' && !session.isPlatformAdmin()) { navigate(homeFor()); return; }

  const main = renderShell(r);
  document.title = `${r.title} · TruePortAI console`;
  const view = h('div.view');
  replace(main, view);
  if (r.access === 'scoped' && r.min && !session.atLeast(r.min)) {
    append(view, [h('h1', r.title), h('p.notice', `This page needs the ${r.min} role; yours is ${session.current().role}.`)]);
    focusHeading(view);
    return;
  }
  const ctx = {
    query, view, navigate, forgetQuery, afterSignIn, homeFor, route: r,
    alive: () => seq === renderSeq,
    rerender: () => { if (seq === renderSeq) route(); },
  };
  try {
    await r.render(ctx);
  } catch (err) {
    if (seq !== renderSeq) return;
    append(view, h('div.form-error', { role: 'alert' }, err && err.message ? err.message : String(err)));
  }
  if (seq === renderSeq) {
    focusHeading(view);
    announce(`${r.title} loaded`);
  }
}

function focusHeading(view) {
  const h1 = view.querySelector('h1');
  if (h1) {
    h1.tabIndex = -1;
    h1.focus({ preventScroll: true });
  }
}

const app = () => document.getElementById('app');

/** Draws the header and navigation around main; returns main. */
function renderShell(r) {
  const root = app();
  root.classList.remove('loading');
  const s = session.current();
  const signed = session.signedIn();
  const main = h('main', { id: 'main', tabindex: '-1' });
  if (!signed) {
    replace(root, h('div.auth-layout', h('div.brand-large', 'TruePortAI'), main));
    return main;
  }
  const skip = h('a.skip', { href: '#main' }, 'Skip to content');
  skip.addEventListener('click', (ev) => { ev.preventDefault(); main.focus(); });
  const top = h('header.topbar', h('a.brand', { href: `#/${homeFor()}` }, 'TruePortAI'));
  if (session.hasTenant()) {
    top.append(h('a.tenant', { href: '#/tenants', title: 'Switch organisation' },
      h('span.visually-hidden', 'Organisation: '), s.tenant.name, ' ', h('span.muted', `(${s.role})`)));
    const envSel = select(['production', 'staging', 'development'], { value: s.env, id: 'env-select' });
    envSel.addEventListener('change', async () => {
      envSel.disabled = true;
      try {
        session.setScope(await call('POST', `${P}/service/auth/switch-environment`, { body: { env: envSel.value } }));
        announce(`Environment ${envSel.value}`);
        route();
      } catch (err) {
        envSel.value = s.env;
        alertBox(err.message);
      } finally {
        envSel.disabled = false;
      }
    });
    top.append(h('div.env', h('label', { for: 'env-select' }, 'Environment'), envSel));
  }
  top.append(h('div.spacer'));
  if (session.isPlatformAdmin()) top.append(h('a.toplink', { href: '#/admin' }, 'Platform admin'));
  top.append(h('a.toplink', { href: '#/account' }, s.user ? s.user.email : 'Account'));
  top.append(button('Sign out', () => { session.end('You signed out.'); }, { class: 'secondary small', id: 'sign-out' }));

  const layout = h('div.layout');
  const nav = h('nav.sidebar', { 'aria-label': 'Console' });
  const list = h('ul');
  const links = [];
  if (session.hasTenant()) {
    for (const x of routes.filter((y) => y.nav && session.atLeast(y.min))) links.push([x.path, x.nav]);
  }
  if (r.access === 'admin') {
    links.length = 0;
    links.push(['admin', 'Stats'], ['admin/tenants', 'Tenants'], ['admin/users', 'Users'], ['admin/configs', 'Global configs'], ['admin/audit', 'Audit log']);
    if (session.hasTenant()) links.push(['overview', '← Back to the organisation']);
  }
  for (const [path, label] of links) {
    const current = path === r.path || (path === 'admin/tenants' && r.path === 'admin/tenant');
    list.append(h('li', h('a', { href: `#/${path}`, 'aria-current': current ? 'page' : undefined }, label)));
  }
  if (links.length) nav.append(list);
  nav.append(h('div.nav-foot',
    h('a', { href: '/platform/api/openapi.json', target: '_blank', rel: 'noopener noreferrer' }, 'Platform API (OpenAPI)'),
    h('a', { href: '/trueportai-services/api/v1/openapi.json', target: '_blank', rel: 'noopener noreferrer' }, 'Gateway API (OpenAPI)')));
  append(layout, [nav, main]);
  replace(root, skip, top, layout);
  return main;
}

function alertBox(text) {
  const main = document.getElementById('main');
  if (main) main.prepend(h('div.form-error', { role: 'alert' }, text));
}

/** After a sign-in: the page a mailed link asked for, else home. */
export function afterSignIn() {
  const next = sessionStorage.getItem(AFTER_SIGNIN);
  sessionStorage.removeItem(AFTER_SIGNIN);
  if (next && next.startsWith('#/')) {
    location.hash = next;
    return;
  }
  navigate(homeFor());
}

session.setRenewer(async () => {
  const { tenant, env } = session.current();
  const sel = await call('POST', `${P}/global/auth/select-tenant`, { auth: 'global', body: { tenant_id: tenant.id } });
  session.setScope(sel);
  if (env && env !== sel.env) session.setScope(await call('POST', `${P}/service/auth/switch-environment`, { body: { env } }));
});

let lastSigned = session.signedIn();
session.onChange(() => {
  const now = session.signedIn();
  if (lastSigned && !now) {
    lastSigned = now;
    navigate('signin');
    return;
  }
  lastSigned = now;
});

window.addEventListener('hashchange', () => {
  if (location.hash.startsWith('#/') || location.hash === '') route();
});
route();
