// Storage settings (admins): whether request and response bodies are kept
// in the request log, redacted, and for how long logs are kept.

import { h, append, field, input, form, val, announce } from '../dom.js';
import { call, P } from '../api.js';

export async function render(ctx) {
  const { view } = ctx;
  const st = await call('GET', `${P}/service/storage`);
  if (!ctx.alive()) return;
  append(view, [h('h1', 'Storage settings'),
    h('p.hint', 'They reach the gateway within seconds and apply to requests from then on.')]);
  const saved = h('p.notice', { role: 'status', hidden: true });
  view.append(form([
    field('Keep request bodies', input({ type: 'checkbox', name: 'log_request_bodies', checked: st.log_request_bodies }), { name: 'log_request_bodies' }),
    field('Keep response bodies', input({ type: 'checkbox', name: 'log_response_bodies', checked: st.log_response_bodies }), { name: 'log_response_bodies' }),
    field('Redact kept bodies (policy matches replaced)', input({ type: 'checkbox', name: 'redact_logged_bodies', checked: st.redact_logged_bodies }), { name: 'redact_logged_bodies' }),
    field('Retention (days)', input({ type: 'number', name: 'retention_days', min: '1', step: '1', value: String(st.retention_days) }),
      { name: 'retention_days', hint: 'Logs and violations older than this are deleted; at most the plan’s retention.' }),
  ], async (f) => {
    const out = await call('PUT', `${P}/service/storage`, {
      body: {
        log_request_bodies: val(f, 'log_request_bodies'), log_response_bodies: val(f, 'log_response_bodies'),
        redact_logged_bodies: val(f, 'redact_logged_bodies'), retention_days: Number(val(f, 'retention_days')),
      },
    });
    f.elements.namedItem('retention_days').value = String(out.retention_days);
    saved.hidden = false;
    saved.textContent = 'Saved.';
    announce('Storage settings saved');
  }, { submitLabel: 'Save settings', label: 'Storage settings' }), saved);
}
