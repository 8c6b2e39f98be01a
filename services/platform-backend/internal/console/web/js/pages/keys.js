// API keys: list; for admins create (the secret shown once, with a copy
// button), edit limits, disable/enable, delete.

import { h, append, field, input, form, val, button, table, badge, dialog, confirmDialog, fmtTime, splitList, localToRFC3339, rfc3339ToLocal, announce } from '../dom.js';
import { call, all, G, consoleConfig } from '../api.js';
import * as session from '../session.js';

function limitsFields(k = {}) {
  const planMax = k.id && (k.rpm_limit === null || k.rpm_limit === undefined);
  const rpm = input({ type: 'number', name: 'rpm_limit', min: '1', step: '1', value: k.rpm_limit ? String(k.rpm_limit) : '', disabled: planMax });
  const max = input({ type: 'checkbox', name: 'plan_max', checked: planMax });
  max.addEventListener('change', () => { rpm.disabled = max.checked; });
  return [
    field('Requests per minute', rpm, { name: 'rpm_limit', hint: k.id ? 'Requests per minute for this key.' : 'Empty: the organisation’s default (gateway.default_rpm, else 60).' }),
    field('No limit of its own: the plan’s maximum', max, { name: 'plan_max' }),
    field('Allowed models', input({ name: 'allowed_models', value: (k.allowed_models || []).join(', '), placeholder: 'empty: every model' }),
      { name: 'allowed_models', hint: 'Comma-separated, e.g. gpt-4o-mini, claude-3-5-haiku-latest.' }),
    field('Expires at', input({ type: 'datetime-local', name: 'expires_at', value: rfc3339ToLocal(k.expires_at) }), { name: 'expires_at', hint: 'Empty: never.' }),
  ];
}

function limitsBody(f, editing) {
  const body = { name: val(f, 'name').trim(), allowed_models: splitList(val(f, 'allowed_models')) };
  if (val(f, 'plan_max')) body.rpm_limit = null;
  else if (val(f, 'rpm_limit') !== '') body.rpm_limit = Number(val(f, 'rpm_limit'));
  const exp = localToRFC3339(val(f, 'expires_at'));
  if (exp) body.expires_at = exp;
  else if (editing) body.expires_at = null;
  return body;
}

async function showSecret(key) {
  const { gatewayURL } = await consoleConfig();
  await dialog('Your new API key', () => {
    const secret = input({ readOnly: true, value: key.key, id: 'new-key-secret', class: 'secret', autocomplete: 'off', spellcheck: 'false' });
    const status = h('span.copy-status', { role: 'status' });
    const copy = button('Copy', async () => {
      try {
        await navigator.clipboard.writeText(secret.value);
        status.textContent = 'Copied.';
      } catch {
        secret.select();
        status.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
      }
    }, { id: 'copy-key' });
    return h('div',
      h('p.notice.warn', 'This is the only time the key is shown. Store it now (a secret manager, an environment variable): it cannot be shown again.'),
      field('Secret key', secret), h('div.actions', copy, status),
      h('h3', 'Use it with an official SDK'),
      h('p', 'Point the SDK’s base URL at the gateway and pass this key as its API key:'),
      h('dl.facts', [['OpenAI', '/trueportai-services/openai/v1'], ['Anthropic', '/trueportai-services/anthropic'], ['Gemini', '/trueportai-services/google']]
        .flatMap(([k, p]) => [h('dt', k), h('dd', h('code', gatewayURL + p))])));
  });
}

export async function render(ctx) {
  const { view } = ctx;
  const admin = session.atLeast('admin');
  const head = h('div.page-head', h('h1', 'API keys'));
  if (admin) head.append(button('Create key', () => create(ctx), { id: 'create-key' }));
  append(view, [head, h('p.hint', `Keys of the ${session.current().env} environment. Applications send them instead of your provider credentials.`)]);
  const keys = await all(`${G}/keys`);
  if (!ctx.alive()) return;
  const cols = [
    { label: 'Name', render: (k) => k.name },
    { label: 'Key', render: (k) => h('code', `sk-${k.prefix}…`) },
    { label: 'Status', render: (k) => (k.enabled ? (k.expires_at && new Date(k.expires_at) < new Date() ? badge('expired', 'warn') : badge('enabled', 'ok')) : badge('disabled', 'danger')) },
    { label: 'RPM', render: (k) => (k.rpm_limit === null ? 'plan maximum' : String(k.rpm_limit)), className: 'num' },
    { label: 'Models', render: (k) => (k.allowed_models && k.allowed_models.length ? k.allowed_models.join(', ') : 'all') },
    { label: 'Expires', render: (k) => (k.expires_at ? fmtTime(k.expires_at) : 'never') },
    { label: 'Last used', render: (k) => (k.last_used_at ? fmtTime(k.last_used_at) : 'never') },
    { label: 'Created', render: (k) => fmtTime(k.created_at) },
  ];
  if (admin) {
    cols.push({
      label: 'Actions',
      render: (k) => h('div.row-actions',
        button('Edit', () => edit(ctx, k), { class: 'secondary small', 'aria-label': `Edit ${k.name}` }),
        button(k.enabled ? 'Disable' : 'Enable', async () => {
          await call('PATCH', `${G}/keys/${encodeURIComponent(k.id)}`, { body: { enabled: !k.enabled } });
          announce(`${k.name} ${k.enabled ? 'disabled' : 'enabled'}`);
          ctx.rerender();
        }, { class: 'secondary small', 'aria-label': `${k.enabled ? 'Disable' : 'Enable'} ${k.name}` }),
        button('Delete', async () => {
          if (!await confirmDialog('Delete key', `Delete “${k.name}” (sk-${k.prefix}…)? Applications using it are refused within seconds.`, 'Delete')) return;
          await call('DELETE', `${G}/keys/${encodeURIComponent(k.id)}`);
          announce(`${k.name} deleted`);
          ctx.rerender();
        }, { class: 'danger small', 'aria-label': `Delete ${k.name}` })),
    });
  }
  view.append(table('API keys', cols, keys, { empty: admin ? 'No key yet: create one.' : 'No key yet.', rowProps: (k) => ({ dataset: { keyId: k.id } }) }));
}

async function create(ctx) {
  const key = await dialog('Create an API key', (close) => form([
    field('Name', input({ name: 'name', required: true, maxlength: '100' }), { name: 'name' }),
    ...limitsFields(),
  ], async (f) => {
    close(await call('POST', `${G}/keys`, { body: limitsBody(f, false) }));
  }, { submitLabel: 'Create key', label: 'Create an API key' }));
  if (!key) return;
  ctx.rerender();
  await showSecret(key);
}

async function edit(ctx, k) {
  const done = await dialog(`Edit ${k.name}`, (close) => form([
    field('Name', input({ name: 'name', required: true, maxlength: '100', value: k.name }), { name: 'name' }),
    ...limitsFields(k),
  ], async (f) => {
    close(await call('PATCH', `${G}/keys/${encodeURIComponent(k.id)}`, { body: limitsBody(f, true) }));
  }, { submitLabel: 'Save', label: `Edit ${k.name}` }));
  if (done) ctx.rerender();
}
