// Sign in (password or emailed code), sign up, password reset, address
// verification and the account page.

import { h, append, field, input, form, val, button, badge, announce } from '../dom.js';
import { call, P } from '../api.js';
import * as session from '../session.js';

function notice(view) {
  const why = session.takeEndReason();
  if (why) view.append(h('p.notice', { role: 'status' }, why));
}

async function signInWith(ctx, login) {
  session.start(login);
  ctx.afterSignIn();
}

export async function signIn(ctx) {
  const { view } = ctx;
  append(view, [h('h1', 'Sign in')]);
  notice(view);
  const pwTab = h('button', { type: 'button', class: 'tab', 'aria-pressed': 'true', id: 'tab-password' }, 'Password');
  const codeTab = h('button', { type: 'button', class: 'tab', 'aria-pressed': 'false', id: 'tab-code' }, 'Email code');
  const pwForm = form([
    field('Email', input({ type: 'email', name: 'email', autocomplete: 'username', required: true })),
    field('Password', input({ type: 'password', name: 'password', autocomplete: 'current-password', required: true })),
  ], async (f) => {
    const login = await call('POST', `${P}/global/auth/login`, { auth: 'none', body: { email: val(f, 'email'), password: val(f, 'password') } });
    await signInWith(ctx, login);
  }, { submitLabel: 'Sign in', label: 'Sign in with a password' });
  pwForm.id = 'signin-password';

  const codeStep = h('div');
  const codeForm = form([
    field('Email', input({ type: 'email', name: 'email', autocomplete: 'username', required: true })),
    codeStep,
  ], async (f) => {
    const email = val(f, 'email');
    if (!f.elements.namedItem('code')) {
      await call('POST', `${P}/global/auth/otp/request`, { auth: 'none', body: { email } });
      append(codeStep, [
        h('p.notice', 'If an account uses this address, a 6-digit code is on its way. It is valid for 10 minutes.'),
        field('Code', input({ name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: '6', required: true })),
      ]);
      f.querySelector('button[type=submit]').textContent = 'Sign in';
      f.elements.namedItem('code').focus();
      return;
    }
    const login = await call('POST', `${P}/global/auth/otp/verify`, { auth: 'none', body: { email, code: val(f, 'code').trim() } });
    await signInWith(ctx, login);
  }, { submitLabel: 'Email me a code', label: 'Sign in with an emailed code' });
  codeForm.id = 'signin-code';
  codeForm.hidden = true;

  const show = (code) => {
    pwForm.hidden = code;
    codeForm.hidden = !code;
    pwTab.setAttribute('aria-pressed', String(!code));
    codeTab.setAttribute('aria-pressed', String(code));
    (code ? codeForm : pwForm).querySelector('input').focus();
  };
  pwTab.addEventListener('click', () => show(false));
  codeTab.addEventListener('click', () => show(true));
  append(view, [
    h('div.tabs', { role: 'group', 'aria-label': 'Sign-in method' }, pwTab, codeTab),
    pwForm, codeForm,
    h('p.links', h('a', { href: '#/signup' }, 'Create an account'), ' · ', h('a', { href: '#/forgot-password' }, 'Forgot your password?')),
  ]);
}

export async function signUp(ctx) {
  const { view } = ctx;
  append(view, [h('h1', 'Create an account')]);
  view.append(form([
    field('Name', input({ name: 'name', autocomplete: 'name' }), { name: 'name' }),
    field('Email', input({ type: 'email', name: 'email', autocomplete: 'email', required: true }), { name: 'email' }),
    field('Password', input({ type: 'password', name: 'password', autocomplete: 'new-password', minlength: '10', required: true }),
      { name: 'password', hint: 'At least 10 characters.' }),
  ], async (f) => {
    const body = { name: val(f, 'name'), email: val(f, 'email'), password: val(f, 'password') };
    try {
      await call('POST', `${P}/global/auth/register`, { auth: 'none', body });
    } catch (err) {
      if (err.code === 'email_taken') err.field = 'email';
      throw err;
    }
    const login = await call('POST', `${P}/global/auth/login`, { auth: 'none', body: { email: body.email, password: body.password } });
    await signInWith(ctx, login);
  }, { submitLabel: 'Create account', label: 'Create an account' }));
  view.append(h('p.links', 'Already registered? ', h('a', { href: '#/signin' }, 'Sign in')));
}

export async function forgot(ctx) {
  const { view } = ctx;
  append(view, [h('h1', 'Forgot password'), h('p', 'We mail a link to choose a new password. It is valid for 30 minutes.')]);
  const f = form([field('Email', input({ type: 'email', name: 'email', autocomplete: 'username', required: true }))], async (fm) => {
    await call('POST', `${P}/global/auth/forgot-password`, { auth: 'none', body: { email: val(fm, 'email') } });
    fm.replaceWith(h('p.notice', { role: 'status' }, 'If an account uses this address, a link is on its way.'));
  }, { submitLabel: 'Send the link' });
  append(view, [f, h('p.links', h('a', { href: '#/signin' }, 'Back to sign in'))]);
}

export async function reset(ctx) {
  const { view, query } = ctx;
  const token = query.get('token') || '';
  if (token) ctx.forgetQuery('reset-password');
  append(view, [h('h1', 'Choose a new password')]);
  view.append(form([
    field('Reset token', input({ name: 'token', value: token, autocomplete: 'off', required: true }), { name: 'token', hint: 'From the link in the mail.' }),
    field('New password', input({ type: 'password', name: 'new_password', autocomplete: 'new-password', minlength: '10', required: true }),
      { name: 'new_password', hint: 'At least 10 characters. Every session of the account ends.' }),
  ], async (f) => {
    await call('POST', `${P}/global/auth/reset-password`, { auth: 'none', body: { token: val(f, 'token').trim(), new_password: val(f, 'new_password') } });
    if (session.signedIn()) session.end('Your password changed. Sign in with the new one.');
    else {
      f.replaceWith(h('p.notice', { role: 'status' }, 'Your password changed. ', h('a', { href: '#/signin' }, 'Sign in')));
    }
  }, { submitLabel: 'Set the password' }));
}

export async function verify(ctx) {
  const { view, query } = ctx;
  const token = query.get('token') || '';
  if (token) ctx.forgetQuery('verify-email');
  append(view, [h('h1', 'Verify your address')]);
  view.append(form([
    field('Verification token', input({ name: 'token', value: token, autocomplete: 'off', required: true }), { name: 'token', hint: 'From the link in the mail.' }),
  ], async (f) => {
    const out = await call('POST', `${P}/global/auth/verify-email/confirm`, { auth: 'global', body: { token: val(f, 'token').trim() } });
    if (out && out.user) session.setUser(out.user);
    f.replaceWith(h('p.notice', { role: 'status' }, 'Your address is verified.',
      session.isPlatformAdmin() ? [' It makes you a platform admin: ', h('a', { href: '#/admin' }, 'open the admin area'), '.'] : null));
    announce('Your address is verified');
  }, { submitLabel: 'Verify' }));
}

export async function account(ctx) {
  const { view } = ctx;
  const me = await call('GET', `${P}/global/auth/me`, { auth: 'global' });
  const user = me.user || me;
  session.setUser(user);
  append(view, [h('h1', 'Account'),
    h('dl.facts',
      h('dt', 'Email'), h('dd', user.email, ' ', user.email_verified ? badge('verified', 'ok') : badge('not verified', 'warn')),
      h('dt', 'Name'), h('dd', user.name || '—'),
      h('dt', 'Platform admin'), h('dd', user.platform_admin ? 'yes' : 'no'))]);
  if (!user.email_verified) {
    const b = button('Mail me a verification link', async () => {
      b.disabled = true;
      try {
        await call('POST', `${P}/global/auth/verify-email/request`, { auth: 'global' });
        b.replaceWith(h('p.notice', { role: 'status' }, 'A link is on its way. ', h('a', { href: '#/verify-email' }, 'Enter its token')));
      } catch (err) {
        b.disabled = false;
        b.after(h('p.form-error', { role: 'alert' }, err.message));
      }
    }, { class: 'secondary' });
    view.append(b);
  }
  view.append(h('h2', 'Change password'));
  view.append(form([
    // The account's name for password managers (and their a11y advice).
    input({ type: 'email', name: 'username', autocomplete: 'username', value: user.email, hidden: true, readOnly: true }),
    field('Current password', input({ type: 'password', name: 'current_password', autocomplete: 'current-password', required: true }), { name: 'current_password' }),
    field('New password', input({ type: 'password', name: 'new_password', autocomplete: 'new-password', minlength: '10', required: true }),
      { name: 'new_password', hint: 'At least 10 characters. Every session of the account ends, this one too.' }),
  ], async (f) => {
    await call('PUT', `${P}/global/auth/password`, { auth: 'global', body: { current_password: val(f, 'current_password'), new_password: val(f, 'new_password') } });
    session.end('Your password changed. Sign in with the new one.');
  }, { submitLabel: 'Change password', label: 'Change password' }));
}
