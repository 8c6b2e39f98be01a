// DOM helpers. Every text reaches the page as a text node or through
// textContent / value: nothing is ever parsed as HTML (no innerHTML), so
// what the APIs return is escaped by construction.

const forbiddenProps = /^(on|innerHTML$|outerHTML$|style$|srcdoc$)/i;

let uid = 0;
/** A fresh element id. */
export function nextId(prefix = 'f') {
  uid += 1;
  return `${prefix}-${uid}`;
}

/**
 * h('tag.class1.class2', {attr: value, on: {click: fn}, dataset: {...}}, ...children)
 * Attributes are set with setAttribute (never event handlers or styles);
 * "value", "checked", "disabled", "selected", "hidden" are set as properties.
 */
export function h(spec, props, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (props && (typeof props !== 'object' || props instanceof Node || Array.isArray(props))) {
    children.unshift(props);
    props = null;
  }
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') {
      for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    } else if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    } else if (k === 'class') {
      el.className = [el.className, v].filter(Boolean).join(' ');
    } else if (['value', 'checked', 'disabled', 'selected', 'hidden', 'required', 'readOnly', 'multiple'].includes(k)) {
      el[k] = v;
    } else if (forbiddenProps.test(k)) {
      throw new Error(`h: property ${k} is not allowed`);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

/** Appends children (strings become text nodes; arrays are flattened). */
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces el's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Announces text to screen readers (the polite live region). */
export function announce(text) {
  const a = document.getElementById('announcer');
  if (a) {
    a.textContent = '';
    setTimeout(() => { a.textContent = text; }, 30);
  }
}

// ---- formatting ----

export function fmtTime(s) {
  if (!s) return '—';
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return String(s);
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function fmtNum(n, digits = 0) {
  if (n === null || n === undefined) return '—';
  return Number(n).toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function fmtUSD(n) {
  if (n === null || n === undefined) return '—';
  const v = Number(n);
  const digits = v !== 0 && Math.abs(v) < 0.01 ? 6 : 2;
  return `$${v.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: digits })}`;
}

export function fmtMS(n) {
  if (n === null || n === undefined) return '—';
  return `${fmtNum(n, n < 10 ? 1 : 0)} ms`;
}

/** RFC 3339 (UTC) from a datetime-local input's value, or "". */
export function localToRFC3339(v) {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A datetime-local input value from an RFC 3339 time. */
export function rfc3339ToLocal(s) {
  if (!s) return '';
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function splitList(s) {
  return String(s || '').split(/[\n,]/).map((x) => x.trim()).filter(Boolean);
}

// ---- building blocks ----

/** A labelled form field; input gets an id and the label points at it. */
export function field(label, input, { hint, name } = {}) {
  const id = input.id || nextId();
  input.id = id;
  if (name) input.dataset.field = name;
  const wrap = h('div.field', { dataset: { field: name || input.name || '' } });
  const lab = h('label', { for: id }, label);
  if (input.type === 'checkbox') {
    wrap.classList.add('field-check');
    append(wrap, [input, lab]);
  } else {
    append(wrap, [lab, input]);
  }
  if (hint) {
    const hid = nextId('hint');
    wrap.append(h('p.hint', { id: hid }, hint));
    input.setAttribute('aria-describedby', hid);
  }
  return wrap;
}

/** Shows msg under the field named name in form (an API error's details.field). */
export function setFieldError(form, name, msg) {
  clearErrors(form);
  let wrap = null;
  for (const w of form.querySelectorAll('.field')) {
    if (w.dataset.field === name) wrap = w;
  }
  if (!wrap) return false;
  const input = wrap.querySelector('input, select, textarea');
  const eid = nextId('err');
  wrap.classList.add('has-error');
  // "config.pattern: invalid …" reads "invalid …" under the field itself.
  const text = String(msg).startsWith(`${name}: `) ? String(msg).slice(name.length + 2) : msg;
  wrap.append(h('p.field-error', { id: eid }, text));
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', [input.getAttribute('aria-describedby'), eid].filter(Boolean).join(' '));
    input.focus();
  }
  return true;
}

export function clearErrors(form) {
  form.querySelectorAll('.field-error').forEach((e) => e.remove());
  form.querySelectorAll('.has-error').forEach((w) => w.classList.remove('has-error'));
  form.querySelectorAll('[aria-invalid]').forEach((i) => i.removeAttribute('aria-invalid'));
  const fe = form.querySelector('.form-error');
  if (fe) fe.replaceChildren();
}

/** Shows an error for the whole form (or under its field when the API named one). */
export function showFormError(form, err) {
  clearErrors(form);
  const field = err && err.field;
  if (field && setFieldError(form, field, err.message)) return;
  let box = form.querySelector('.form-error');
  if (!box) {
    box = h('div.form-error', { role: 'alert' });
    form.prepend(box);
  }
  box.textContent = err && err.message ? err.message : String(err);
}

export function input(props) {
  return h('input', { type: 'text', ...props });
}

export function select(options, props = {}) {
  const s = h('select', props);
  for (const o of options) {
    const [value, label] = Array.isArray(o) ? o : [o, o];
    s.append(h('option', { value, selected: props.value === value }, label));
  }
  if (props.value !== undefined) s.value = props.value;
  return s;
}

/**
 * A button. An async onClick disables it meanwhile; its error is shown
 * as an alert after the button's row.
 */
export function button(label, onClick, props = {}) {
  const b = h('button', { type: 'button', ...props });
  b.addEventListener('click', async (ev) => {
    const r = onClick(ev);
    if (!r || typeof r.then !== 'function') return;
    b.disabled = true;
    try {
      await r;
    } catch (err) {
      const at = b.closest('.row-actions, .actions, td, .page-head') || b;
      const old = at.parentNode && at.parentNode.querySelector(':scope > .action-error');
      if (old) old.remove();
      at.after(h('p.form-error.action-error', { role: 'alert' }, err && err.message ? err.message : String(err)));
    } finally {
      if (b.isConnected) b.disabled = false;
    }
  });
  append(b, [label]);
  return b;
}

/**
 * A table. columns: [{label, render(row) -> node|string, className}].
 */
export function table(caption, columns, rows, { empty = 'Nothing yet.', rowProps, hideCaption = false } = {}) {
  if (!rows.length) return h('p.empty', empty);
  const t = h('table', h(hideCaption ? 'caption.visually-hidden' : 'caption', caption));
  t.append(h('thead', h('tr', columns.map((c) => h('th', { scope: 'col', class: c.className }, c.label)))));
  const body = h('tbody');
  for (const r of rows) {
    const tr = h('tr', rowProps ? rowProps(r) : null);
    for (const c of columns) {
      const v = c.render(r);
      tr.append(h('td', { class: c.className }, v === null || v === undefined || v === '' ? '—' : v));
    }
    body.append(tr);
  }
  t.append(body);
  return h('div.table-wrap', t);
}

export function badge(text, kind = '') {
  return h(`span.badge${kind ? `.badge-${kind}` : ''}`, text);
}

/**
 * A modal dialog (the native <dialog>: focus is trapped, Escape closes).
 * build(close) returns the body. Resolves when closed.
 */
export function dialog(title, build, { wide = false } = {}) {
  return new Promise((resolve) => {
    const tid = nextId('dlg');
    const d = h(`dialog.dialog${wide ? '.wide' : ''}`, { 'aria-labelledby': tid });
    let result;
    const close = (v) => { result = v; d.close(); };
    d.append(h('div.dialog-head', h('h2', { id: tid }, title), button('Close', () => close(undefined), { class: 'ghost', 'aria-label': 'Close dialog' })));
    d.append(h('div.dialog-body', build(close)));
    d.addEventListener('close', () => { d.remove(); resolve(result); });
    document.body.append(d);
    d.showModal();
    const first = d.querySelector('.dialog-body input, .dialog-body select, .dialog-body textarea, .dialog-body button');
    if (first) first.focus();
  });
}

/** Asks to confirm a destructive action. */
export function confirmDialog(title, text, confirmLabel = 'Confirm') {
  return dialog(title, (close) => h('div',
    h('p', text),
    h('div.actions',
      button(confirmLabel, () => close(true), { class: 'danger' }),
      button('Cancel', () => close(false), { class: 'secondary' })),
  ));
}

/** A form whose submit runs fn(form) with the button disabled meanwhile. */
export function form(children, onSubmit, { submitLabel = 'Save', extra = [], label } = {}) {
  const submit = h('button', { type: 'submit' }, submitLabel);
  const f = h('form', { novalidate: true, 'aria-label': label }, h('div.form-error', { role: 'alert' }), children, h('div.actions', submit, extra));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(f);
    submit.disabled = true;
    try {
      await onSubmit(f);
    } catch (err) {
      showFormError(f, err);
    } finally {
      submit.disabled = false;
    }
  });
  return f;
}

/** The value of the control named name in form. */
export function val(f, name) {
  const el = f.elements.namedItem(name);
  if (!el) return undefined;
  if (el.type === 'checkbox') return el.checked;
  return el.value;
}
