// Members and invites: everyone sees the members; admins change roles,
// remove members, invite and revoke invites; anyone may leave.

import { h, append, field, input, select, form, val, button, table, badge, dialog, confirmDialog, fmtTime, announce } from '../dom.js';
import { call, all, P } from '../api.js';
import * as session from '../session.js';

const roles = ['viewer', 'member', 'admin', 'owner'];

export async function render(ctx) {
  const { view } = ctx;
  const admin = session.atLeast('admin');
  const me = session.current().user || {};
  const head = h('div.page-head', h('h1', 'Members and invites'));
  if (admin) head.append(button('Invite someone', () => invite(ctx), { id: 'invite' }));
  append(view, [head]);
  const [members, invites] = await Promise.all([all(`${P}/service/members`), admin ? all(`${P}/service/invites`) : Promise.resolve(null)]);
  if (!ctx.alive()) return;
  const cols = [
    { label: 'Email', render: (m) => h('span', m.email, m.user_id === me.id ? h('span.muted', ' (you)') : null) },
    { label: 'Name', render: (m) => m.name },
    { label: 'Role', render: (m) => m.role },
    { label: 'Joined', render: (m) => fmtTime(m.joined_at) },
    {
      label: 'Actions',
      render: (m) => {
        const acts = h('div.row-actions');
        if (admin && m.user_id !== me.id) {
          const sel = select(roles, { value: m.role, 'aria-label': `Role of ${m.email}` });
          acts.append(sel, button('Change role', async () => {
            await call('PUT', `${P}/service/members/${encodeURIComponent(m.user_id)}/role`, { body: { role: sel.value } });
            announce(`${m.email} is now ${sel.value}`);
            ctx.rerender();
          }, { class: 'secondary small', 'aria-label': `Change the role of ${m.email}` }),
          button('Remove', async () => {
            if (!await confirmDialog('Remove member', `Remove ${m.email} from the organisation? Their tokens stop working at once.`, 'Remove')) return;
            await call('DELETE', `${P}/service/members/${encodeURIComponent(m.user_id)}`);
            ctx.rerender();
          }, { class: 'danger small', 'aria-label': `Remove ${m.email}` }));
        }
        if (m.user_id === me.id) {
          acts.append(button('Leave', async () => {
            if (!await confirmDialog('Leave organisation', 'Leave this organisation? You need a new invitation to come back.', 'Leave')) return;
            await call('DELETE', `${P}/service/members/${encodeURIComponent(m.user_id)}`);
            session.clearScope();
            ctx.navigate('tenants');
          }, { class: 'secondary small' }));
        }
        return acts;
      },
    },
  ];
  view.append(table('Members', cols, members));
  if (!invites) return;
  view.append(h('h2', 'Pending invites'));
  view.append(table('Pending invites', [
    { label: 'Email', render: (i) => i.email },
    { label: 'Role', render: (i) => i.role },
    { label: 'Sent', render: (i) => fmtTime(i.created_at) },
    { label: 'Expires', render: (i) => fmtTime(i.expires_at) },
    {
      label: 'Actions',
      render: (i) => button('Revoke', async () => {
        await call('DELETE', `${P}/service/invites/${encodeURIComponent(i.id)}`);
        ctx.rerender();
      }, { class: 'danger small', 'aria-label': `Revoke the invite of ${i.email}` }),
    },
  ], invites, { empty: 'No pending invite.' }));
}

async function invite(ctx) {
  const done = await dialog('Invite someone', (close) => form([
    field('Email', input({ type: 'email', name: 'email', required: true, autocomplete: 'off' }), { name: 'email' }),
    field('Role', select(roles.slice(0, 3).concat(session.atLeast('owner') ? ['owner'] : []), { name: 'role', value: 'member' }), { name: 'role',
      hint: 'viewer: members, plan, configs; member: also keys, policies, logs and analytics (read); admin: changes everything but owners.' }),
  ], async (f) => {
    close(await call('POST', `${P}/service/invites`, { body: { email: val(f, 'email').trim(), role: val(f, 'role') } }));
  }, { submitLabel: 'Send invite', label: 'Invite someone' }));
  if (done) {
    announce(`Invite sent to ${done.email}`);
    ctx.rerender();
  }
}
