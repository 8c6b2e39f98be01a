// Overview: totals, time series (requests, errors, tokens, cost, p95
// latency) drawn with uPlot, and the breakdown by model, provider and key,
// all from the gateway's stats API.

import uPlot from '../../vendor/uplot/uPlot.esm.js';
import { h, append, field, select, button, fmtNum, fmtUSD, fmtMS, nextId } from '../dom.js';
import { call, all, G } from '../api.js';

const periods = {
  '24h': { label: 'Last 24 hours', ms: 24 * 3600e3, interval: 'hour' },
  '7d': { label: 'Last 7 days', ms: 7 * 24 * 3600e3, interval: 'hour' },
  '30d': { label: 'Last 30 days', ms: 30 * 24 * 3600e3, interval: 'day' },
};

const colors = { blue: '#1f4fd1', red: '#b42318', green: '#067647', purple: '#6941c6', orange: '#b54708' };

function rfc(d) { return d.toISOString().replace(/\.\d{3}Z$/, 'Z'); }

/** Buckets from..to at the interval (UTC), each with the API's point or zeros. */
function fill(series, from, to, interval) {
  const step = interval === 'day' ? 24 * 3600e3 : 3600e3;
  const start = new Date(from);
  if (interval === 'day') start.setUTCHours(0, 0, 0, 0);
  else start.setUTCMinutes(0, 0, 0);
  const out = [];
  for (let t = start.getTime(); t <= to.getTime(); t += step) {
    out.push({ bucket: new Date(t).toISOString(), requests: 0, errors: 0, total_tokens: 0, cost_usd: 0, p95_latency_ms: null, avg_latency_ms: null });
  }
  // Each point into its slot (the nearest, should the database's day
  // boundaries not be UTC midnight).
  for (const p of series) {
    const i = Math.round((new Date(p.bucket).getTime() - start.getTime()) / step);
    if (i >= 0 && i < out.length) out[i] = { ...p, bucket: out[i].bucket };
  }
  return out;
}

function chart(title, points, lines, { unit = '', fmt = (v) => fmtNum(v) } = {}) {
  const capId = nextId('cap');
  const plot = h('div.plot');
  const sum = points.reduce((a, p) => a + (Number(p[lines[0].key]) || 0), 0);
  const peak = points.reduce((a, p) => Math.max(a, Number(p[lines[0].key]) || 0), 0);
  const summary = `${title}: ${lines.map((l) => l.label).join(', ')}; ${lines[0].label.toLowerCase()} ${lines[0].key.includes('latency') ? `peak ${fmt(peak)}` : `total ${fmt(sum)}, peak ${fmt(peak)}`}.`;
  const fig = h('figure.chart', { 'aria-labelledby': capId, dataset: { chart: lines[0].key, sum, points: points.filter((p) => Number(p[lines[0].key]) > 0).length } },
    h('figcaption', { id: capId }, title), plot, h('p.visually-hidden', summary));
  const data = [points.map((p) => new Date(p.bucket).getTime() / 1000), ...lines.map((l) => points.map((p) => (p[l.key] === null || p[l.key] === undefined ? null : Number(p[l.key]))))];
  const make = (width) => new uPlot({
    width, height: 190,
    scales: { x: { time: true } },
    series: [{}, ...lines.map((l) => ({ label: l.label, stroke: l.color, width: 2, fill: `${l.color}14`, points: { show: points.length <= 48, size: 5 }, spanGaps: false, value: (u, v) => (v === null || v === undefined ? '—' : `${fmt(v)}${unit}`) }))],
    axes: [{ stroke: '#374151', grid: { stroke: '#e5e7eb' } }, { stroke: '#374151', grid: { stroke: '#e5e7eb' }, size: 76, values: (u, vals) => vals.map((v) => fmt(v)) }],
    legend: { show: true },
  }, data, plot);
  requestAnimationFrame(() => {
    const u = make(Math.max(280, plot.clientWidth || 480));
    const ro = new ResizeObserver(() => {
      if (!plot.isConnected) { // the page changed
        ro.disconnect();
        u.destroy();
        return;
      }
      const w = Math.max(280, plot.clientWidth);
      if (Math.abs(w - u.width) > 4) u.setSize({ width: w, height: 190 });
    });
    ro.observe(plot);
  });
  return fig;
}

function breakdown(title, groups, nameOf) {
  const max = groups.reduce((a, g) => Math.max(a, g.requests), 0) || 1;
  if (!groups.length) return h('section.card', h('h3', title), h('p.empty', 'No traffic in this period.'));
  const t = h('table.breakdown', h('caption.visually-hidden', title),
    h('thead', h('tr', h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Requests'), h('th.num', { scope: 'col' }, 'Tokens'), h('th.num', { scope: 'col' }, 'Cost'))));
  const body = h('tbody');
  for (const g of groups.slice(0, 10)) {
    const bar = h('span.bar');
    bar.style.width = `${Math.max(2, (g.requests / max) * 100)}%`;
    body.append(h('tr', h('th', { scope: 'row' }, nameOf(g.key)), h('td', h('span.bar-wrap', bar), h('span.bar-num', fmtNum(g.requests))),
      h('td.num', fmtNum(g.total_tokens)), h('td.num', fmtUSD(g.cost_usd))));
  }
  t.append(body);
  return h('section.card', { dataset: { breakdown: title } }, h('h3', title), t);
}

export async function render(ctx) {
  const { view, query } = ctx;
  const period = periods[query.get('period')] ? query.get('period') : '24h';
  const p = periods[period];
  const periodSel = select(Object.entries(periods).map(([k, v]) => [k, v.label]), { value: period, name: 'period' });
  periodSel.addEventListener('change', () => ctx.navigate('overview', { period: periodSel.value }));
  append(view, [h('div.page-head', h('h1', 'Overview'),
    h('div.toolbar', field('Period', periodSel), button('Refresh', () => ctx.rerender(), { class: 'secondary' })))]);

  const to = new Date();
  const from = new Date(to.getTime() - p.ms);
  const q = (group) => call('GET', `${G}/analytics/stats`, { query: { from: rfc(from), to: rfc(to), interval: p.interval, group_by: group } });
  const [byModel, byProvider, byKey, keys] = await Promise.all([q('model'), q('provider'), q('key'), all(`${G}/keys`).catch(() => [])]);
  if (!ctx.alive()) return;
  const keyName = new Map(keys.map((k) => [k.id, `${k.name} (sk-${k.prefix}…)`]));
  const t = byModel.totals;
  const errRate = t.requests ? ` (${fmtNum((t.errors / t.requests) * 100, 1)} %)` : '';
  view.append(h('div.cards', { 'aria-label': 'Totals' },
    card('Requests', fmtNum(t.requests), 'requests'),
    card('Errors', `${fmtNum(t.errors)}${errRate}`, 'errors'),
    card('Tokens', fmtNum(t.total_tokens), 'tokens', `${fmtNum(t.prompt_tokens)} prompt · ${fmtNum(t.completion_tokens)} completion`),
    card('Cost', fmtUSD(t.cost_usd), 'cost'),
    card('Avg latency', t.requests ? fmtMS(t.avg_latency_ms) : '—', 'avg-latency'),
    card('p95 latency', t.requests ? fmtMS(t.p95_latency_ms) : '—', 'p95-latency')));

  const pts = fill(byModel.series, from, to, p.interval);
  view.append(h('div.charts',
    chart('Requests and errors', pts, [{ key: 'requests', label: 'Requests', color: colors.blue }, { key: 'errors', label: 'Errors', color: colors.red }]),
    chart('Tokens', pts, [{ key: 'total_tokens', label: 'Tokens', color: colors.purple }]),
    chart('Cost', pts, [{ key: 'cost_usd', label: 'Cost (USD)', color: colors.green }], { fmt: (v) => fmtUSD(v) }),
    chart('Latency', pts, [{ key: 'p95_latency_ms', label: 'p95', color: colors.orange }, { key: 'avg_latency_ms', label: 'Average', color: colors.blue }], { unit: ' ms', fmt: (v) => fmtNum(v) })));
  if (!t.requests) view.append(h('p.notice', 'No requests in this period yet. Create an API key and send a request through the gateway.'));

  view.append(h('h2', 'Breakdown'));
  view.append(h('div.breakdowns',
    breakdown('By model', byModel.breakdown, (k) => k || '(unknown)'),
    breakdown('By provider', byProvider.breakdown, (k) => k || '(unknown)'),
    breakdown('By key', byKey.breakdown, (k) => keyName.get(k) || (k ? `deleted key ${k.slice(0, 8)}…` : '(no key)'))));
}

function card(label, value, id, sub) {
  return h('div.card.stat', { dataset: { stat: id } }, h('div.stat-label', label), h('div.stat-value', value), sub ? h('div.stat-sub', sub) : null);
}
