// Policies: list; for admins create / edit (the API's validation error is
// shown on the field it names, e.g. config.pattern) / delete; shadow mode.

import { h, append, field, input, select, form, val, button, table, badge, dialog, confirmDialog, fmtTime, splitList, nextId, announce } from '../dom.js';
import { call, all, G } from '../api.js';
import * as session from '../session.js';
import { providers } from './logs.js';

const types = [
  ['pii', 'Personal data (PII)'], ['secrets', 'Secrets and credentials'], ['prompt_injection', 'Prompt injection'],
  ['keyword', 'Keywords'], ['regex', 'Regular expression'], ['model_allowlist', 'Model allowlist'], ['max_tokens', 'Token and size caps'],
];
const piiKinds = ['email', 'phone', 'credit_card', 'us_ssn', 'iban', 'ipv4'];
const secretKinds = ['aws_access_key', 'aws_secret_key', 'gcp_api_key', 'private_key', 'github_token', 'gitlab_token', 'openai_key',
  'anthropic_key', 'slack_token', 'slack_webhook', 'stripe_key', 'jwt', 'npm_token'];
const envs = ['production', 'staging', 'development'];

/** A fieldset of checkboxes named name, one per option. */
function checks(legend, name, options, chosen = [], hint) {
  const fs = h('fieldset.checks', { dataset: { field: name } }, h('legend', legend));
  for (const o of options) {
    const [value, label] = Array.isArray(o) ? o : [o, o];
    const id = nextId('c');
    fs.append(h('span.check', h('input', { type: 'checkbox', id, name, value, checked: chosen.includes(value) }), h('label', { for: id }, label)));
  }
  if (hint) fs.append(h('p.hint', hint));
  fs.classList.add('field');
  return fs;
}

function checked(f, name) {
  return [...f.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
}

function configFields(type, c = {}) {
  switch (type) {
    case 'pii': return [checks('Kinds', 'config.kinds', piiKinds, c.kinds || piiKinds)];
    case 'secrets': return [checks('Kinds', 'config.kinds', secretKinds, c.kinds || secretKinds, 'None checked: every kind.')];
    case 'prompt_injection': return [field('Threshold', input({ type: 'number', name: 'config.threshold', min: '0.01', max: '1', step: '0.01', value: c.threshold ?? '' }),
      { name: 'config.threshold', hint: 'Score above which a prompt counts as an injection (0 < t ≤ 1). Empty: the default.' })];
    case 'keyword': return [
      field('Keywords', h('textarea', { name: 'config.keywords', rows: '4', value: (c.keywords || []).join('\n') }), { name: 'config.keywords', hint: 'One per line.' }),
      field('Case sensitive', input({ type: 'checkbox', name: 'config.case_sensitive', checked: !!c.case_sensitive }), { name: 'config.case_sensitive' }),
      field('Whole words only', input({ type: 'checkbox', name: 'config.whole_word', checked: !!c.whole_word }), { name: 'config.whole_word' })];
    case 'regex': return [field('Pattern', input({ name: 'config.pattern', value: c.pattern || '', spellcheck: 'false', autocomplete: 'off' }),
      { name: 'config.pattern', hint: 'RE2 syntax, e.g. (?i)project-[0-9]+.' })];
    case 'model_allowlist': return [field('Models', h('textarea', { name: 'config.models', rows: '3', value: (c.models || []).join('\n') }), { name: 'config.models', hint: 'One per line.' })];
    case 'max_tokens': return [
      field('Max output tokens', input({ type: 'number', name: 'config.max_output_tokens', min: '1', value: c.max_output_tokens ?? '' }), { name: 'config.max_output_tokens' }),
      field('Max prompt characters', input({ type: 'number', name: 'config.max_prompt_chars', min: '1', value: c.max_prompt_chars ?? '' }), { name: 'config.max_prompt_chars' })];
    default: return [];
  }
}

function configOf(f, type) {
  const num = (n) => (val(f, n) === '' ? undefined : Number(val(f, n)));
  switch (type) {
    case 'pii': return { kinds: checked(f, 'config.kinds') };
    case 'secrets': { const k = checked(f, 'config.kinds'); return k.length ? { kinds: k } : {}; }
    case 'prompt_injection': return { threshold: num('config.threshold') };
    case 'keyword': return { keywords: val(f, 'config.keywords').split('\n').map((k) => k.trim()).filter(Boolean), case_sensitive: val(f, 'config.case_sensitive'), whole_word: val(f, 'config.whole_word') };
    case 'regex': return { pattern: val(f, 'config.pattern') };
    case 'model_allowlist': return { models: splitList(val(f, 'config.models')) };
    case 'max_tokens': return { max_output_tokens: num('config.max_output_tokens'), max_prompt_chars: num('config.max_prompt_chars') };
    default: return {};
  }
}

function policyForm(p, keys, onSubmit) {
  const typeSel = select(types, { name: 'type', value: p.type || 'pii' });
  const cfg = h('div.config', { dataset: { field: 'config' } });
  const drawConfig = () => cfg.replaceChildren(h('h3', 'Configuration'), ...configFields(typeSel.value, typeSel.value === p.type ? p.config : {}));
  typeSel.addEventListener('change', drawConfig);
  drawConfig();
  cfg.classList.add('field');
  const sc = p.scope || {};
  return form([
    field('Name', input({ name: 'name', required: true, maxlength: '100', value: p.name || '' }), { name: 'name' }),
    field('Description', input({ name: 'description', maxlength: '1000', value: p.description || '' }), { name: 'description' }),
    field('Type', typeSel, { name: 'type' }),
    cfg,
    h('div.grid2',
      field('Action', select([['block', 'Block (400, nothing sent)'], ['redact', 'Redact matches'], ['flag', 'Flag (forward, record)']], { name: 'action', value: p.action || 'block' }), { name: 'action' }),
      field('Mode', select([['enforce', 'Enforce'], ['shadow', 'Shadow (record what it would do, change nothing)']], { name: 'mode', value: p.mode || 'enforce' }), { name: 'mode' }),
      field('Direction', select([['request', 'Requests'], ['response', 'Responses'], ['both', 'Both']], { name: 'direction', value: p.direction || 'request' }), { name: 'direction' }),
      field('Priority', input({ type: 'number', name: 'priority', step: '1', value: String(p.priority ?? 0) }), { name: 'priority', hint: 'Higher runs first.' })),
    field('Enabled', input({ type: 'checkbox', name: 'enabled', checked: p.enabled ?? true }), { name: 'enabled' }),
    h('details.scope', h('summary', 'Scope (empty: everything)'),
      checks('Environments', 'scope.envs', envs, sc.envs || []),
      checks('Providers', 'scope.providers', providers, sc.providers || []),
      field('Models', input({ name: 'scope.models', value: (sc.models || []).join(', ') }), { name: 'scope.models', hint: 'Comma-separated.' }),
      keys.length ? checks('Keys', 'scope.key_ids', keys.map((k) => [k.id, `${k.name} (sk-${k.prefix}…)`]), sc.key_ids || []) : null),
  ], async (f) => {
    const body = {
      name: val(f, 'name').trim(), description: val(f, 'description').trim(), type: val(f, 'type'), config: configOf(f, val(f, 'type')),
      action: val(f, 'action'), mode: val(f, 'mode'), direction: val(f, 'direction'), enabled: val(f, 'enabled'),
      priority: Number(val(f, 'priority') || 0),
      scope: { envs: checked(f, 'scope.envs'), providers: checked(f, 'scope.providers'), models: splitList(val(f, 'scope.models')), key_ids: checked(f, 'scope.key_ids') },
    };
    try {
      await onSubmit(body);
    } catch (err) {
      // A field inside the closed scope section: open it to show the error.
      if (err.field && err.field.startsWith('scope')) f.querySelector('details.scope').open = true;
      throw err;
    }
  }, { submitLabel: p.id ? 'Save policy' : 'Create policy', label: 'Policy' });
}

function scopeText(sc) {
  const parts = [];
  for (const [k, label] of [['envs', 'env'], ['providers', 'provider'], ['models', 'model'], ['key_ids', 'key']]) {
    if (sc && sc[k] && sc[k].length) parts.push(`${label}: ${sc[k].length > 2 ? `${sc[k].length} selected` : sc[k].join(', ')}`);
  }
  return parts.join('; ') || 'everything';
}

export async function render(ctx) {
  const { view } = ctx;
  const admin = session.atLeast('admin');
  const head = h('div.page-head', h('h1', 'Policies'));
  const [rows, keys] = await Promise.all([all(`${G}/policies`), all(`${G}/keys`).catch(() => [])]);
  if (!ctx.alive()) return;
  if (admin) head.append(button('New policy', () => edit(ctx, {}, keys), { id: 'new-policy' }));
  append(view, [head, h('p.hint', `Rules of the ${session.current().env} environment, checked on every proxied request. Shadow mode records what a rule would do without doing it.`)]);
  const cols = [
    { label: 'Name', render: (p) => h('span', h('strong', p.name), p.description ? h('span.muted.block', p.description) : null) },
    { label: 'Type', render: (p) => p.type },
    { label: 'Action', render: (p) => badge(p.action, p.action === 'block' ? 'danger' : 'warn') },
    { label: 'Mode', render: (p) => (p.mode === 'shadow' ? badge('shadow', 'info') : 'enforce') },
    { label: 'Enabled', render: (p) => (p.enabled ? 'yes' : badge('off')) },
    { label: 'Priority', render: (p) => String(p.priority), className: 'num' },
    { label: 'Direction', render: (p) => p.direction },
    { label: 'Scope', render: (p) => scopeText(p.scope) },
    { label: 'Updated', render: (p) => fmtTime(p.updated_at) },
  ];
  if (admin) {
    cols.push({
      label: 'Actions',
      render: (p) => h('div.row-actions',
        button('Edit', () => edit(ctx, p, keys), { class: 'secondary small', 'aria-label': `Edit ${p.name}` }),
        button('Delete', async () => {
          if (!await confirmDialog('Delete policy', `Delete “${p.name}”? Requests stop being checked against it within seconds.`, 'Delete')) return;
          await call('DELETE', `${G}/policies/${encodeURIComponent(p.id)}`);
          announce(`${p.name} deleted`);
          ctx.rerender();
        }, { class: 'danger small', 'aria-label': `Delete ${p.name}` })),
    });
  }
  view.append(table('Policies', cols, rows, { empty: 'No policy yet: every request passes unchecked.' }));
}

async function edit(ctx, p, keys) {
  const saved = await dialog(p.id ? `Edit ${p.name}` : 'New policy', (close) => policyForm(p, keys, async (body) => {
    close(p.id
      ? await call('PUT', `${G}/policies/${encodeURIComponent(p.id)}`, { body })
      : await call('POST', `${G}/policies`, { body }));
  }), { wide: true });
  if (saved) {
    announce(`${saved.name} saved`);
    ctx.rerender();
  }
}
