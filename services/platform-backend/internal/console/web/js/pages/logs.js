// Request log: the logs API's filters and pagination; a request's detail
// (bodies only when the storage settings keep them; its violations).

import { h, append, field, input, select, form, val, button, table, badge, dialog, setFieldError, fmtTime, fmtNum, fmtUSD, fmtMS, localToRFC3339, rfc3339ToLocal } from '../dom.js';
import { call, all, G } from '../api.js';
import * as session from '../session.js';

export const providers = ['openai', 'anthropic', 'google', 'azure', 'bedrock', 'compat'];
const PAGE = 50;

export function statusBadge(code) {
  const kind = code >= 500 ? 'danger' : code >= 400 ? 'warn' : 'ok';
  return badge(String(code), kind);
}

export function outcomeBadge(o) {
  const kind = { ok: 'ok', blocked: 'danger', error: 'danger', redacted: 'warn', flagged: 'warn' }[o] || '';
  return badge(o, kind);
}

/** Pagination: "1–50 of 120" with Previous / Next. */
export function pager(page, go) {
  const { total, offset, limit } = page;
  const first = total ? offset + 1 : 0;
  const last = Math.min(offset + page.items.length, total);
  return h('nav.pager', { 'aria-label': 'Pages' },
    button('Previous', () => go(Math.max(0, offset - limit)), { class: 'secondary', disabled: offset === 0 }),
    h('span', { 'aria-live': 'polite' }, `${fmtNum(first)}–${fmtNum(last)} of ${fmtNum(total)}${page.total_capped ? '+' : ''}`),
    button('Next', () => go(offset + limit), { class: 'secondary', disabled: offset + page.items.length >= total }));
}

export async function render(ctx) {
  const { view, query } = ctx;
  const f = Object.fromEntries(['from', 'to', 'key_id', 'provider', 'model', 'status', 'stream'].map((k) => [k, query.get(k) || '']));
  const offset = Math.max(0, Number(query.get('offset')) || 0);
  append(view, [h('div.page-head', h('h1', 'Request log'), button('Refresh', () => ctx.rerender(), { class: 'secondary' }))]);

  const keys = await all(`${G}/keys`).catch(() => []);
  const keyName = new Map(keys.map((k) => [k.id, k.name]));
  const filters = form([
    h('div.filters',
      field('From', input({ type: 'datetime-local', name: 'from', value: rfc3339ToLocal(f.from) }), { name: 'from' }),
      field('To', input({ type: 'datetime-local', name: 'to', value: rfc3339ToLocal(f.to) }), { name: 'to' }),
      field('Key', select([['', 'Any key'], ...keys.map((k) => [k.id, `${k.name} (sk-${k.prefix}…)`])], { name: 'key_id', value: f.key_id }), { name: 'key_id' }),
      field('Provider', select([['', 'Any provider'], ...providers], { name: 'provider', value: f.provider }), { name: 'provider' }),
      field('Model', input({ name: 'model', value: f.model, placeholder: 'e.g. gpt-4o-mini' }), { name: 'model' }),
      field('Status', input({ name: 'status', value: f.status, list: 'status-list', placeholder: '2xx, 4xx, 429…' }), { name: 'status' }),
      h('datalist', { id: 'status-list' }, ['2xx', '4xx', '5xx', '400', '401', '403', '429', '502'].map((s) => h('option', { value: s }))),
      field('Stream', select([['', 'Any'], ['true', 'Streamed'], ['false', 'Not streamed']], { name: 'stream', value: f.stream }), { name: 'stream' })),
  ], async (fm) => {
    ctx.navigate('logs', {
      from: localToRFC3339(val(fm, 'from')), to: localToRFC3339(val(fm, 'to')), key_id: val(fm, 'key_id'), provider: val(fm, 'provider'),
      model: val(fm, 'model').trim(), status: val(fm, 'status').trim(), stream: val(fm, 'stream'),
    });
  }, { submitLabel: 'Apply filters', label: 'Filters', extra: [button('Clear', () => ctx.navigate('logs'), { class: 'secondary' })] });
  view.append(filters);

  let page;
  try {
    page = await call('GET', `${G}/analytics/logs`, { query: { ...f, limit: PAGE, offset } });
  } catch (err) {
    if (err.field) {
      if (setFieldError(filters, err.field, err.message)) return;
    }
    throw err;
  }
  if (!ctx.alive()) return;
  const go = (o) => ctx.navigate('logs', { ...f, offset: o || '' });
  view.append(table('Requests, newest first', [
    { label: 'Time', render: (r) => h('time', { datetime: r.created_at }, fmtTime(r.created_at)) },
    { label: 'Status', render: (r) => statusBadge(r.status_code) },
    { label: 'Outcome', render: (r) => outcomeBadge(r.outcome) },
    { label: 'Key', render: (r) => r.key_name || (r.key_id ? keyName.get(r.key_id) : '') },
    { label: 'Provider', render: (r) => r.provider },
    { label: 'Model', render: (r) => r.model },
    { label: 'Latency', render: (r) => fmtMS(r.latency_ms), className: 'num' },
    { label: 'Tokens', render: (r) => fmtNum(r.total_tokens), className: 'num' },
    { label: 'Cost', render: (r) => fmtUSD(r.cost_usd), className: 'num' },
    { label: 'Detail', render: (r) => button('Details', () => detail(r), { class: 'link', 'aria-label': `Details of request ${r.request_id}` }) },
  ], page.items, { empty: 'No request matches. Requests appear here a few seconds after they pass the gateway.', rowProps: (r) => ({ dataset: { requestId: r.request_id } }) }));
  view.append(pager(page, go));
}

function pre(label, text) {
  let shown = text;
  try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON: as stored */ }
  return h('div', h('h3', label), h('pre.body', shown));
}

async function detail(r) {
  await dialog(`Request ${r.request_id}`, () => {
    const box = h('div.detail');
    box.append(h('dl.facts', [
      ['Time', fmtTime(r.created_at)], ['Request id', h('code', r.request_id)], ['Key', `${r.key_name || '—'}${r.key_id ? ` (${r.key_id})` : ''}`],
      ['Environment', r.env], ['Provider', r.provider], ['Model', r.model || '—'], ['Path', h('code', r.path)],
      ['Status', statusBadge(r.status_code)], ['Outcome', outcomeBadge(r.outcome)], ['Streamed', r.stream ? 'yes' : 'no'],
      ['Latency', fmtMS(r.latency_ms)], ['Time to first byte', fmtMS(r.ttfb_ms)],
      ['Prompt tokens', fmtNum(r.prompt_tokens)], ['Completion tokens', fmtNum(r.completion_tokens)], ['Total tokens', fmtNum(r.total_tokens)],
      ['Cached tokens', fmtNum(r.cached_tokens)], ['Cost', fmtUSD(r.cost_usd)], ['Error', r.error || '—'],
    ].flatMap(([k, v]) => [h('dt', k), h('dd', v)])));
    if (r.violation_ids && r.violation_ids.length) {
      const list = h('ul.violations', h('li', 'Loading…'));
      box.append(h('h3', 'Violations'), list);
      Promise.all(r.violation_ids.map((id) => call('GET', `${G}/analytics/violations/${encodeURIComponent(id)}`).catch(() => null))).then((vs) => {
        list.replaceChildren(...vs.map((v, i) => (v
          ? h('li', h('strong', v.policy_name), ` — ${v.type}, ${v.action}${v.shadow ? ' (shadow)' : ''}, ${v.severity}`,
            h('ul', (v.matches || []).map((m) => h('li', h('code', m.kind), ' ', m.snippet))))
          : h('li', `Violation ${r.violation_ids[i]} (not found)`))));
      });
    }
    if (r.request_body !== undefined || r.response_body !== undefined) {
      if (r.request_body !== undefined && r.request_body !== null) box.append(pre('Request body', r.request_body));
      if (r.response_body !== undefined && r.response_body !== null) box.append(pre('Response body', r.response_body));
    } else {
      box.append(h('p.hint', 'Bodies are not kept for this request: ',
        session.atLeast('admin') ? h('a', { href: '#/storage' }, 'the storage settings') : 'the storage settings (admins)', ' decide whether they are.'));
    }
    return box;
  }, { wide: true });
}
