// Plan and subscription: the catalog with the current plan; admins switch
// plans (a downgrade the usage exceeds is refused by the API, which names
// what exceeds) and see the subscription history.

import { h, append, button, table, badge, confirmDialog, fmtTime, fmtNum, fmtUSD, announce } from '../dom.js';
import { call, all, P } from '../api.js';
import * as session from '../session.js';

const limitLabels = [
  ['monthly_requests', 'Requests per month'], ['max_api_keys', 'API keys'], ['max_members', 'Members'],
  ['max_rpm_per_key', 'Requests per minute per key'], ['retention_days', 'Log retention (days)'],
];

export async function render(ctx) {
  const { view } = ctx;
  const admin = session.atLeast('admin');
  const [info, plans, subs] = await Promise.all([
    call('GET', `${P}/service/info`), all(`${P}/service/catalog/plans`), admin ? all(`${P}/service/subscriptions`) : Promise.resolve(null),
  ]);
  if (!ctx.alive()) return;
  append(view, [h('h1', 'Plan and subscription'),
    h('p', 'Your organisation ', h('strong', info.name), ' is on the ', h('strong', { dataset: { currentPlan: info.plan } }, info.plan), ' plan.')]);
  const cards = h('div.plans');
  for (const p of plans) {
    const current = p.id === info.plan;
    const card = h(`section.card.plan${current ? '.current' : ''}`, { 'aria-label': `${p.name} plan`, dataset: { plan: p.id } },
      h('h2', p.name, current ? [' ', badge('current', 'ok')] : null),
      h('p.price', p.price_usd_month ? `${fmtUSD(p.price_usd_month)} / month` : 'Free'),
      h('dl.facts', limitLabels.flatMap(([k, label]) => [h('dt', label), h('dd', p.limits[k] === null || p.limits[k] === undefined ? 'unlimited' : fmtNum(p.limits[k]))])));
    if (admin && !current) {
      card.append(button(`Switch to ${p.name}`, async () => {
        if (!await confirmDialog('Change plan', `Move ${info.name} to the ${p.name} plan${p.price_usd_month ? ` (${fmtUSD(p.price_usd_month)} / month)` : ''}?`, 'Change plan')) return;
        await call('POST', `${P}/service/subscriptions`, { body: { plan_id: p.id } });
        announce(`Now on the ${p.name} plan`);
        ctx.rerender();
      }, { 'aria-label': `Switch to the ${p.name} plan` }));
    }
    cards.append(card);
  }
  view.append(cards);
  if (!subs) return;
  view.append(h('h2', 'Subscription history'));
  view.append(table('Subscriptions, newest first', [
    { label: 'Plan', render: (s) => s.plan_id },
    { label: 'Status', render: (s) => badge(s.status, s.status === 'active' ? 'ok' : '') },
    { label: 'Started', render: (s) => fmtTime(s.started_at) },
    { label: 'Ended', render: (s) => (s.ended_at ? fmtTime(s.ended_at) : '—') },
    { label: 'Invoice', render: (s) => (s.invoice ? `${fmtUSD(s.invoice.amount_usd)} ${s.invoice.currency} · ${s.invoice.status}` : '—') },
  ], subs, { empty: 'No subscription recorded yet (the organisation is on its default plan).' }));
}
