// Provider credentials and the other tenant configs. Secret values come
// back masked from the API (sk-…abcd) and are never shown whole: an admin
// replaces a credential, nobody reads it back.

import { h, append, field, input, form, val, button, table, dialog, fmtTime, splitList, announce } from '../dom.js';
import { call, P } from '../api.js';
import * as session from '../session.js';

function shown(item) {
  const v = item.value;
  if (v === null || v === undefined || v === '') return h('span.muted', 'not set');
  if (Array.isArray(v)) return v.length ? v.join(', ') : h('span.muted', 'none');
  if (item.secret) return h('code.masked', String(v));
  return String(v);
}

/** The editor of one config key; resolves to the saved item. */
function edit(item, isNew = false) {
  return dialog(isNew ? 'Add a config' : `Set ${item.key}`, (close) => {
    let control;
    let hint;
    if (item.secret) {
      control = input({ type: 'password', name: 'value', autocomplete: 'new-password', spellcheck: 'false', required: true });
      hint = 'Stored encrypted; shown masked afterwards. It replaces the current value.';
    } else if (Array.isArray(item.value)) {
      control = h('textarea', { name: 'value', rows: '4', value: item.value.join('\n') });
      hint = 'One per line (or comma-separated). Empty: none.';
    } else if (typeof item.value === 'number') {
      control = input({ type: 'number', name: 'value', value: String(item.value) });
    } else {
      control = input({ name: 'value', value: item.value || '', spellcheck: 'false' });
      if (item.key.endsWith('.base_url')) hint = 'An https URL (loopback is allowed in dev); the gateway never dials private or metadata addresses for it.';
    }
    return form([
      h('p', h('code', item.key)),
      field('Value', control, { name: 'value', hint }),
    ], async (f) => {
      let value = val(f, 'value');
      if (Array.isArray(item.value)) value = splitList(value);
      else if (typeof item.value === 'number') value = Number(value);
      else value = value.trim();
      close(await call('PUT', `${P}/service/configs/${encodeURIComponent(item.key)}`, { body: { value } }));
    }, { submitLabel: 'Save', label: `Set ${item.key}` });
  });
}

function configTable(caption, items, admin, ctx, hideCaption = false) {
  const cols = [
    { label: 'Key', render: (i) => h('code', i.key) },
    { label: 'Value', render: (i) => shown(i) },
    { label: 'Updated', render: (i) => (i.updated_at ? fmtTime(i.updated_at) : '—') },
  ];
  if (admin) {
    cols.push({
      label: 'Actions',
      render: (i) => button(i.secret ? (i.value ? 'Replace' : 'Set') : 'Edit', async () => {
        const saved = await edit(i);
        if (saved) {
          announce(`${i.key} saved`);
          ctx.rerender();
        }
      }, { class: 'secondary small', 'aria-label': `${i.secret ? 'Set' : 'Edit'} ${i.key}` }),
    });
  }
  return table(caption, cols, items, { hideCaption, rowProps: (i) => ({ dataset: { config: i.key } }) });
}

export async function render(ctx) {
  const { view } = ctx;
  const admin = session.atLeast('admin');
  const { items } = await call('GET', `${P}/service/configs`);
  if (!ctx.alive()) return;
  const secrets = items.filter((i) => i.secret);
  const providers = items.filter((i) => !i.secret && i.key.startsWith('providers.'));
  const others = items.filter((i) => !i.secret && !i.key.startsWith('providers.'));
  const head = h('div.page-head', h('h1', 'Provider credentials'));
  if (admin) head.append(button('Add an OpenAI-compatible upstream', () => addCompat(ctx), { class: 'secondary', id: 'add-compat' }));
  append(view, [head,
    h('p.hint', 'The gateway sends these to the providers in place of your applications’ TruePortAI keys. Values are encrypted at rest and only ever shown masked.'),
    configTable('Credentials', secrets, admin, ctx),
    h('h2', 'Provider settings'), configTable('Provider settings', providers, admin, ctx, true),
    h('h2', 'Gateway settings'), configTable('Gateway settings', others, admin, ctx, true)]);
}

async function addCompat(ctx) {
  const done = await dialog('Add an OpenAI-compatible upstream', (close) => form([
    field('Name', input({ name: 'name', required: true, pattern: '[a-z0-9][a-z0-9-]{0,62}', autocomplete: 'off' }),
      { name: 'name', hint: 'Lower-case letters, digits, dashes; the path is /trueportai-services/compat/NAME/v1.' }),
    field('Base URL', input({ type: 'url', name: 'base_url', required: true, placeholder: 'https://api.example.com' }), { name: 'base_url', hint: 'Where its /v1 API lives.' }),
    field('API key (optional)', input({ type: 'password', name: 'api_key', autocomplete: 'new-password' }), { name: 'api_key' }),
  ], async (f) => {
    const name = val(f, 'name').trim();
    try {
      await call('PUT', `${P}/service/configs/${encodeURIComponent(`providers.compat.${name}.base_url`)}`, { body: { value: val(f, 'base_url').trim() } });
    } catch (err) {
      if (err.field === 'value') err.field = 'base_url';
      if (err.field === 'key') err.field = 'name';
      throw err;
    }
    if (val(f, 'api_key')) {
      try {
        await call('PUT', `${P}/service/configs/${encodeURIComponent(`providers.compat.${name}.api_key`)}`, { body: { value: val(f, 'api_key') } });
      } catch (err) {
        if (err.field === 'value') err.field = 'api_key';
        throw err;
      }
    }
    close(true);
  }, { submitLabel: 'Add upstream', label: 'Add an OpenAI-compatible upstream' }));
  if (done) ctx.rerender();
}
