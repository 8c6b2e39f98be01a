// Pick an organisation (tenant), create one, accept an invitation.

import { h, append, field, input, form, val, button, table, badge, announce } from '../dom.js';
import { call, all, P } from '../api.js';
import * as session from '../session.js';

async function open(ctx, tenantId) {
  const sel = await call('POST', `${P}/global/auth/select-tenant`, { auth: 'global', body: { tenant_id: tenantId } });
  session.setScope(sel);
  announce(`${sel.tenant.name} selected`);
  ctx.navigate(ctx.homeFor());
}

export async function picker(ctx) {
  const { view } = ctx;
  append(view, [h('h1', 'Organisations')]);
  const list = await all(`${P}/global/tenants`, { query: {} });
  const err = h('div.form-error', { role: 'alert' });
  view.append(err);
  view.append(table('Your organisations', [
    { label: 'Name', render: (t) => t.name },
    { label: 'Slug', render: (t) => h('code', t.slug) },
    { label: 'Your role', render: (t) => t.role },
    { label: 'Plan', render: (t) => t.plan },
    { label: 'Status', render: (t) => badge(t.status, t.status === 'active' ? 'ok' : 'danger') },
    {
      label: 'Open',
      render: (t) => button(session.current().tenant && session.current().tenant.id === t.id ? 'Open (current)' : 'Open', async (ev) => {
        ev.target.disabled = true;
        try { await open(ctx, t.id); } catch (e) { err.textContent = e.message; ev.target.disabled = false; }
      }, { 'aria-label': `Open ${t.name}`, disabled: t.status !== 'active' }),
    },
  ], list, { empty: 'You belong to no organisation yet: create one below, or accept an invitation.' }));

  view.append(h('h2', 'Create an organisation'));
  const slugHint = h('span');
  const slug = input({ name: 'slug', required: true, autocomplete: 'off', pattern: '[a-z0-9](-?[a-z0-9]){2,39}' });
  let timer = null;
  slug.addEventListener('input', () => {
    clearTimeout(timer);
    const v = slug.value.trim();
    if (!v) { slugHint.textContent = ''; return; }
    timer = setTimeout(async () => {
      try {
        const r = await call('GET', `${P}/global/tenants/check-availability`, { auth: 'none', query: { slug: v } });
        if (slug.value.trim() === v) slugHint.textContent = r.available ? `“${v}” is available.` : `“${v}” is not available${r.reason ? `: ${r.reason}` : ''}.`;
      } catch { slugHint.textContent = ''; }
    }, 300);
  });
  const name = input({ name: 'name', required: true, autocomplete: 'organization' });
  name.addEventListener('input', () => {
    if (slug.dataset.touched) return;
    slug.value = name.value.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
    slug.dispatchEvent(new Event('input'));
  });
  slug.addEventListener('keydown', () => { slug.dataset.touched = '1'; });
  const slugField = field('Slug', slug, { name: 'slug', hint: '3 to 40 lower-case letters, digits and single dashes; part of your requests’ context.' });
  slugField.append(h('p.hint', { 'aria-live': 'polite' }, slugHint));
  view.append(form([field('Name', name, { name: 'name' }), slugField], async (f) => {
    const t = await call('POST', `${P}/global/tenants`, { auth: 'global', body: { name: val(f, 'name'), slug: val(f, 'slug').trim() } });
    await open(ctx, t.id);
  }, { submitLabel: 'Create organisation', label: 'Create an organisation' }));

  view.append(h('p.links', h('a', { href: '#/accept-invite' }, 'Accept an invitation'), ' with the token from its mail.'));
}

export async function acceptInvite(ctx) {
  const { view, query } = ctx;
  const token = query.get('token') || '';
  if (token) ctx.forgetQuery('accept-invite');
  append(view, [h('h1', 'Accept an invitation'), h('p', 'The invitation must be for the address you signed in with.')]);
  view.append(form([
    field('Invitation token', input({ name: 'token', value: token, autocomplete: 'off', required: true }), { name: 'token' }),
  ], async (f) => {
    const out = await call('POST', `${P}/global/invites/accept`, { auth: 'global', body: { token: val(f, 'token').trim() } });
    await open(ctx, out.tenant.id);
  }, { submitLabel: 'Join the organisation' }));
}
