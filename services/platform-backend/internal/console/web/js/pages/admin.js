// The platform-admin area: platform stats, tenants (detail, suspend,
// activate), users, global configs and the audit log. The API checks the
// platform-admin flag on every call; the console only hides the area.

import { h, append, field, input, select, form, val, button, table, badge, dialog, confirmDialog, fmtTime, fmtNum, fmtUSD, setFieldError, announce } from '../dom.js';
import { call, P } from '../api.js';
import { pager } from './logs.js';

const A = `${P}/admin`;
const PAGE = 50;

function usageText(u) {
  if (!u) return h('span.muted', 'unavailable');
  return `${fmtNum(u.requests)} req · ${fmtNum(u.total_tokens)} tok · ${fmtUSD(u.cost_usd)}`;
}

export async function stats(ctx) {
  const { view } = ctx;
  const s = await call('GET', `${A}/stats`, { auth: 'global' });
  if (!ctx.alive()) return;
  append(view, [h('h1', 'Platform admin'),
    h('div.cards',
      stat('Users', fmtNum(s.users), `${fmtNum(s.platform_admins)} platform admins`),
      stat('Tenants', fmtNum(s.tenants), `${fmtNum(s.active_tenants)} active · ${fmtNum(s.suspended_tenants)} suspended`),
      stat('Requests this month', s.requests_this_month === null ? '—' : fmtNum(s.requests_this_month)),
      stat('Tokens this month', s.usage_this_month ? fmtNum(s.usage_this_month.total_tokens) : '—'),
      stat('Cost this month', s.usage_this_month ? fmtUSD(s.usage_this_month.cost_usd) : '—')),
    h('h2', 'Tenants by plan'),
    table('Tenants by plan', [{ label: 'Plan', render: (r) => r[0] }, { label: 'Tenants', render: (r) => fmtNum(r[1]), className: 'num' }],
      Object.entries(s.tenants_by_plan || {})),
    s.usage_this_month ? null : h('p.hint', 'The month’s usage comes from the gateway, which did not answer.')]);
}

function stat(label, value, sub) {
  return h('div.card.stat', h('div.stat-label', label), h('div.stat-value', value), sub ? h('div.stat-sub', sub) : null);
}

async function setStatus(t, status) {
  const verb = status === 'suspended' ? 'Suspend' : 'Activate';
  if (!await confirmDialog(`${verb} tenant`, status === 'suspended'
    ? `Suspend ${t.name}? Its keys and tokens stop working within seconds.`
    : `Activate ${t.name} again?`, verb)) return false;
  await call('PUT', `${A}/tenants/${encodeURIComponent(t.id)}/status`, { auth: 'global', body: { status } });
  announce(`${t.name} ${status}`);
  return true;
}

export async function tenants(ctx) {
  const { view, query } = ctx;
  const q = query.get('q') || '';
  const status = query.get('status') || '';
  const offset = Math.max(0, Number(query.get('offset')) || 0);
  append(view, [h('h1', 'Tenants')]);
  view.append(form([h('div.filters',
    field('Search', input({ type: 'search', name: 'q', value: q, placeholder: 'name or slug' }), { name: 'q' }),
    field('Status', select([['', 'Any'], 'active', 'suspended'], { name: 'status', value: status }), { name: 'status' }))],
  async (f) => ctx.navigate('admin/tenants', { q: val(f, 'q').trim(), status: val(f, 'status') }), { submitLabel: 'Search', label: 'Search tenants' }));
  const page = await call('GET', `${A}/tenants`, { auth: 'global', query: { q, status, limit: PAGE, offset } });
  if (!ctx.alive()) return;
  view.append(table('Tenants', [
    { label: 'Name', render: (t) => h('a', { href: `#/admin/tenant?id=${encodeURIComponent(t.id)}` }, t.name) },
    { label: 'Slug', render: (t) => h('code', t.slug) },
    { label: 'Status', render: (t) => badge(t.status, t.status === 'active' ? 'ok' : 'danger') },
    { label: 'Plan', render: (t) => t.plan },
    { label: 'Members', render: (t) => fmtNum(t.member_count), className: 'num' },
    { label: 'Usage this month', render: (t) => usageText(t.usage_this_month) },
    { label: 'Created', render: (t) => fmtTime(t.created_at) },
    {
      label: 'Actions',
      render: (t) => button(t.status === 'active' ? 'Suspend' : 'Activate', async () => {
        if (await setStatus(t, t.status === 'active' ? 'suspended' : 'active')) ctx.rerender();
      }, { class: t.status === 'active' ? 'danger small' : 'secondary small', 'aria-label': `${t.status === 'active' ? 'Suspend' : 'Activate'} ${t.name}` }),
    },
  ], page.items, { empty: 'No tenant matches.' }));
  view.append(pager(page, (o) => ctx.navigate('admin/tenants', { q, status, offset: o || '' })));
}

export async function tenant(ctx) {
  const { view, query } = ctx;
  const id = query.get('id') || '';
  const [t, lim] = await Promise.all([
    call('GET', `${A}/tenants/${encodeURIComponent(id)}`, { auth: 'global' }),
    call('GET', `${A}/tenants/${encodeURIComponent(id)}/limits`, { auth: 'global' }).catch(() => null),
  ]);
  if (!ctx.alive()) return;
  const head = h('div.page-head', h('h1', t.name),
    button(t.status === 'active' ? 'Suspend' : 'Activate', async () => {
      if (await setStatus(t, t.status === 'active' ? 'suspended' : 'active')) ctx.rerender();
    }, { class: t.status === 'active' ? 'danger' : 'secondary' }));
  const facts = (pairs) => h('dl.facts', pairs.flatMap(([k, v]) => [h('dt', k), h('dd', v === null || v === undefined || v === '' ? '—' : v)]));
  append(view, [head, h('p', h('a', { href: '#/admin/tenants' }, '← All tenants')),
    facts([['Id', h('code', t.id)], ['Slug', h('code', t.slug)], ['Status', badge(t.status, t.status === 'active' ? 'ok' : 'danger')], ['Plan', t.plan],
      ['Members', fmtNum(t.member_count)], ['Owners', (t.owners || []).map((o) => o.email).join(', ')], ['Created', fmtTime(t.created_at)],
      ['Usage this month', usageText(t.usage_this_month)],
      ['Subscription', t.subscription ? `${t.subscription.plan_id} since ${fmtTime(t.subscription.started_at)}` : 'none (default plan)']]),
    h('h2', 'Plan limits'),
    facts(Object.entries(t.limits || {}).map(([k, v]) => [k, v ? fmtNum(v) : 'unlimited'])),
    h('h2', 'Storage'),
    facts(Object.entries(t.storage || {}).map(([k, v]) => [k, String(v)]))]);
  if (lim) {
    view.append(h('h2', 'Limit overrides'));
    view.append(h('pre.body', JSON.stringify(lim, null, 2)));
  }
}

export async function users(ctx) {
  const { view, query } = ctx;
  const q = query.get('q') || '';
  const offset = Math.max(0, Number(query.get('offset')) || 0);
  append(view, [h('h1', 'Users')]);
  view.append(form([field('Search', input({ type: 'search', name: 'q', value: q, placeholder: 'email or name' }), { name: 'q' })],
    async (f) => ctx.navigate('admin/users', { q: val(f, 'q').trim() }), { submitLabel: 'Search', label: 'Search users' }));
  const page = await call('GET', `${A}/users`, { auth: 'global', query: { q, limit: PAGE, offset } });
  if (!ctx.alive()) return;
  view.append(table('Users', [
    { label: 'Email', render: (u) => u.email },
    { label: 'Name', render: (u) => u.name },
    { label: 'Verified', render: (u) => (u.email_verified ? 'yes' : 'no') },
    { label: 'Platform admin', render: (u) => (u.platform_admin ? badge('admin', 'info') : 'no') },
    { label: 'Organisations', render: (u) => fmtNum(u.tenant_count), className: 'num' },
    { label: 'Registered', render: (u) => fmtTime(u.created_at) },
  ], page.items, { empty: 'No user matches.' }));
  view.append(pager(page, (o) => ctx.navigate('admin/users', { q, offset: o || '' })));
}

export async function configs(ctx) {
  const { view } = ctx;
  const { items } = await call('GET', `${A}/configs`, { auth: 'global' });
  if (!ctx.alive()) return;
  append(view, [h('h1', 'Global configs')]);
  view.append(table('Global configs', [
    { label: 'Key', render: (c) => h('code', c.key) },
    { label: 'Value', render: (c) => h('code', JSON.stringify(c.value)) },
    { label: 'Default', render: (c) => h('code', JSON.stringify(c.default)) },
    { label: 'Description', render: (c) => c.description },
    { label: 'Updated', render: (c) => (c.updated_at ? fmtTime(c.updated_at) : '—') },
    {
      label: 'Actions',
      render: (c) => button('Edit', async () => {
        if (await editGlobal(c)) ctx.rerender();
      }, { class: 'secondary small', 'aria-label': `Edit ${c.key}` }),
    },
  ], items));
}

function editGlobal(c) {
  return dialog(`Set ${c.key}`, (close) => {
    let control;
    let hint = c.description;
    if (c.type === 'bool') control = input({ type: 'checkbox', name: 'value', checked: !!c.value });
    else if (c.type === 'plan_id') control = input({ name: 'value', value: c.value || '' });
    else {
      control = h('textarea', { name: 'value', rows: '8', value: JSON.stringify(c.value, null, 2), spellcheck: 'false' });
      hint = `${c.description}. JSON.`;
    }
    return form([field(c.type === 'bool' ? 'Enabled' : 'Value', control, { name: 'value', hint })], async (f) => {
      let value = val(f, 'value');
      if (c.type !== 'bool' && c.type !== 'plan_id') {
        try { value = JSON.parse(value); } catch (e) {
          setFieldError(f, 'value', `Not valid JSON: ${e.message}`);
          return;
        }
      }
      close(await call('PUT', `${A}/configs/${encodeURIComponent(c.key)}`, { auth: 'global', body: { value } }));
    }, { submitLabel: 'Save', label: `Set ${c.key}` });
  });
}

export async function audit(ctx) {
  const { view, query } = ctx;
  const f = Object.fromEntries(['action', 'tenant_id', 'actor_id'].map((k) => [k, query.get(k) || '']));
  const offset = Math.max(0, Number(query.get('offset')) || 0);
  append(view, [h('h1', 'Audit log')]);
  const filters = form([h('div.filters',
    field('Action', input({ name: 'action', value: f.action, placeholder: 'e.g. invite.create' }), { name: 'action' }),
    field('Tenant id', input({ name: 'tenant_id', value: f.tenant_id }), { name: 'tenant_id' }),
    field('Actor id', input({ name: 'actor_id', value: f.actor_id }), { name: 'actor_id' }))],
  async (fm) => ctx.navigate('admin/audit', { action: val(fm, 'action').trim(), tenant_id: val(fm, 'tenant_id').trim(), actor_id: val(fm, 'actor_id').trim() }),
  { submitLabel: 'Apply filters', label: 'Filters' });
  view.append(filters);
  let page;
  try {
    page = await call('GET', `${A}/audit`, { auth: 'global', query: { ...f, limit: PAGE, offset } });
  } catch (err) {
    if (err.field && setFieldError(filters, err.field, err.message)) return;
    throw err;
  }
  if (!ctx.alive()) return;
  view.append(table('Audit log, newest first', [
    { label: 'Time', render: (r) => fmtTime(r.at) },
    { label: 'Actor', render: (r) => r.actor_email || r.actor_id },
    { label: 'Action', render: (r) => h('code', r.action) },
    { label: 'Target', render: (r) => `${r.target_type} ${r.target_id}` },
    { label: 'Tenant', render: (r) => (r.tenant_id ? h('a', { href: `#/admin/tenant?id=${encodeURIComponent(r.tenant_id)}` }, r.tenant_id.slice(0, 8)) : '') },
    { label: 'Details', render: (r) => (Object.keys(r.details || {}).length ? h('code', JSON.stringify(r.details)) : '') },
  ], page.items, { empty: 'No audit entry matches.' }));
  view.append(pager(page, (o) => ctx.navigate('admin/audit', { ...f, offset: o || '' })));
}
