// Violations: the analytics API's filters, pagination and a violation's
// detail (matches are masked by the gateway: never the raw secret).

import { h, append, field, input, select, form, val, button, table, badge, dialog, setFieldError, fmtTime, localToRFC3339, rfc3339ToLocal } from '../dom.js';
import { call, all, G } from '../api.js';
import { pager } from './logs.js';

const PAGE = 50;
const types = ['pii', 'secrets', 'prompt_injection', 'keyword', 'regex', 'model_allowlist', 'max_tokens'];

export async function render(ctx) {
  const { view, query } = ctx;
  const f = Object.fromEntries(['from', 'to', 'policy_id', 'type', 'action', 'key_id'].map((k) => [k, query.get(k) || '']));
  const offset = Math.max(0, Number(query.get('offset')) || 0);
  append(view, [h('div.page-head', h('h1', 'Violations'), button('Refresh', () => ctx.rerender(), { class: 'secondary' }))]);
  const [policies, keys] = await Promise.all([all(`${G}/policies`).catch(() => []), all(`${G}/keys`).catch(() => [])]);
  const keyName = new Map(keys.map((k) => [k.id, k.name]));
  const filters = form([h('div.filters',
    field('From', input({ type: 'datetime-local', name: 'from', value: rfc3339ToLocal(f.from) }), { name: 'from' }),
    field('To', input({ type: 'datetime-local', name: 'to', value: rfc3339ToLocal(f.to) }), { name: 'to' }),
    field('Policy', select([['', 'Any policy'], ...policies.map((p) => [p.id, p.name])], { name: 'policy_id', value: f.policy_id }), { name: 'policy_id' }),
    field('Type', select([['', 'Any type'], ...types], { name: 'type', value: f.type }), { name: 'type' }),
    field('Action', select([['', 'Any action'], 'block', 'redact', 'flag'], { name: 'action', value: f.action }), { name: 'action' }),
    field('Key', select([['', 'Any key'], ...keys.map((k) => [k.id, `${k.name} (sk-${k.prefix}…)`])], { name: 'key_id', value: f.key_id }), { name: 'key_id' }))],
  async (fm) => {
    ctx.navigate('violations', {
      from: localToRFC3339(val(fm, 'from')), to: localToRFC3339(val(fm, 'to')), policy_id: val(fm, 'policy_id'), type: val(fm, 'type'),
      action: val(fm, 'action'), key_id: val(fm, 'key_id'),
    });
  }, { submitLabel: 'Apply filters', label: 'Filters', extra: [button('Clear', () => ctx.navigate('violations'), { class: 'secondary' })] });
  view.append(filters);
  let page;
  try {
    page = await call('GET', `${G}/analytics/violations`, { query: { ...f, limit: PAGE, offset } });
  } catch (err) {
    if (err.field && setFieldError(filters, err.field, err.message)) return;
    throw err;
  }
  if (!ctx.alive()) return;
  view.append(table('Violations, newest first', [
    { label: 'Time', render: (v) => h('time', { datetime: v.created_at }, fmtTime(v.created_at)) },
    { label: 'Policy', render: (v) => v.policy_name },
    { label: 'Type', render: (v) => v.type },
    { label: 'Action', render: (v) => h('span', badge(v.action, v.action === 'block' ? 'danger' : 'warn'), v.shadow ? [' ', badge('shadow', 'info')] : null) },
    { label: 'Severity', render: (v) => v.severity },
    { label: 'Direction', render: (v) => v.direction },
    { label: 'Key', render: (v) => (v.key_id ? keyName.get(v.key_id) || v.key_id.slice(0, 8) : '') },
    { label: 'Model', render: (v) => [v.provider, v.model].filter(Boolean).join(' / ') },
    { label: 'Matches', render: (v) => String((v.matches || []).length), className: 'num' },
    { label: 'Detail', render: (v) => button('Details', () => detail(v, keyName), { class: 'link', 'aria-label': `Details of the ${v.policy_name} violation` }) },
  ], page.items, { empty: 'No violation matches.', rowProps: (v) => ({ dataset: { violationId: v.id } }) }));
  view.append(pager(page, (o) => ctx.navigate('violations', { ...f, offset: o || '' })));
}

async function detail(v, keyName) {
  await dialog(`Violation of ${v.policy_name}`, () => h('div.detail',
    h('dl.facts', [
      ['Time', fmtTime(v.created_at)], ['Violation id', h('code', v.id)], ['Request id', h('code', v.request_id)],
      ['Policy', v.policy_name], ['Type', v.type], ['Action', v.action], ['Shadow', v.shadow ? 'yes: recorded, not enforced' : 'no'],
      ['Severity', v.severity], ['Direction', v.direction], ['Key', v.key_id ? `${keyName.get(v.key_id) || ''} (${v.key_id})` : '—'],
      ['Environment', v.env], ['Provider', v.provider || '—'], ['Model', v.model || '—'],
    ].flatMap(([k, x]) => [h('dt', k), h('dd', x)])),
    h('h3', 'Matches (masked)'),
    (v.matches || []).length
      ? h('ul.violations', v.matches.map((m) => h('li', h('code', m.kind), ` at ${m.offset}: `, h('span.snippet', m.snippet))))
      : h('p.empty', 'No match detail.')), { wide: true });
}
