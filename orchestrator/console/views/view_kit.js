// Helpers shared by the windows, parcels and alarms views: strings with a fallback table, DOM
// building, times, throttling, stream subscriptions, roles and a modal dialog.
//
// Decisions: no framework and no innerHTML with data (every text goes in through textContent, so a
// parcel's or alarm's text can never inject markup); the views' stylesheet is linked once, from this
// module's own URL, so the views work under any mount point.

import STRINGS from './strings_views.js';

const ROLE_RANK = { viewer: 0, operator: 1, admin: 2 };

/** Link views.css into the document once. */
export function ensureCss() {
  if (document.querySelector('link[data-robopost-views]')) return;
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = new URL('./views.css', import.meta.url).href;
  link.dataset.robopostViews = '1';
  document.head.append(link);
}

/** A view module's ``mount(root, ctx)``/``unmount()`` around ``make(root, ctx)``, an object with
 *  ``start()`` and ``stop()``: one instance at a time, the views' stylesheet loaded once. */
export function singleView(make) {
  let current = null;
  const unmount = () => {
    if (current) current.stop();
    current = null;
  };
  const mount = (root, ctx) => {
    unmount();
    ensureCss();
    current = make(root, ctx);
    current.start();
    return unmount;
  };
  return { mount, unmount };
}

/** The display language: ctx.lang (string or function), else the document's lang; zh by default. */
export function langOf(ctx) {
  let lang = ctx && ctx.lang;
  if (typeof lang === 'function') lang = lang();
  if (!lang && ctx && ctx.t && typeof ctx.t.lang === 'string') lang = ctx.t.lang;
  if (!lang) lang = document.documentElement.lang || 'zh';
  return String(lang).toLowerCase().startsWith('en') ? 'en' : 'zh';
}

function fill(text, vars) {
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** A translator: ctx.t(key) when it knows the key, else this views' own table (then Chinese, then the key). */
export function translator(ctx) {
  return (key, vars) => {
    let text;
    if (ctx && typeof ctx.t === 'function') {
      try {
        text = ctx.t(key, vars);
      } catch (err) {
        text = undefined;
      }
    }
    if (typeof text !== 'string' || text === '' || text === key) {
      const table = STRINGS[langOf(ctx)] || STRINGS.zh;
      text = table[key] ?? STRINGS.zh[key] ?? key;
    }
    return fill(text, vars);
  };
}

/** Build an element: h('td', {class: 'x', dataset: {id: 1}, onclick: fn}, 'text', child, ...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name === 'style' && typeof value === 'object') {
      for (const [prop, v] of Object.entries(value)) {
        if (prop.startsWith('--')) el.style.setProperty(prop, v);
        else el.style[prop] = v;
      }
    }
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** `fn` at most once per `ms`, the last call of a burst always running (trailing edge). */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  const run = () => {
    timer = null;
    last = Date.now();
    fn();
  };
  const call = () => {
    if (timer) return;
    const wait = last + ms - Date.now();
    if (wait <= 0) run();
    else timer = setTimeout(run, wait);
  };
  call.cancel = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  return call;
}

/** Subscribe to stream events of `type`; returns an unsubscribe function (whatever the stream offers). */
export function listen(stream, type, fn) {
  if (!stream || typeof stream.on !== 'function') return () => {};
  const off = stream.on(type, fn);
  if (typeof off === 'function') return off;
  if (typeof stream.off === 'function') return () => stream.off(type, fn);
  return () => {};
}

/** The role of ctx.user (a UserView, or {user: UserView} as /me answers). */
export function roleOf(user) {
  if (!user) return 'viewer';
  return user.role || (user.user && user.user.role) || 'viewer';
}

/** Whether `user` has `role` or a higher one. */
export function may(user, role) {
  return (ROLE_RANK[roleOf(user)] ?? 0) >= ROLE_RANK[role];
}

/** The user's name. */
export function nameOf(user) {
  if (!user) return '';
  return user.username || (user.user && user.user.username) || '';
}

function locale(lang) {
  return lang === 'en' ? 'en-GB' : 'zh-CN';
}

/** Clock time "08:05" of an ISO time ('' for none). */
export function hhmm(iso, lang) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleTimeString(locale(lang), { hour: '2-digit', minute: '2-digit', hour12: false });
}

/** Date and time "11-27 08:05:12" of an ISO time. */
export function dateTime(iso, lang, seconds = false) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const opts = { month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false };
  if (seconds) opts.second = '2-digit';
  return d.toLocaleString(locale(lang), opts);
}

/** "5 分钟前" / "5 min ago": how long before `nowMs` the ISO time was. */
export function ago(iso, nowMs, tr) {
  if (!iso) return '';
  const s = Math.max(0, (nowMs - new Date(iso).getTime()) / 1000);
  if (s < 60) return tr('views.just_now');
  if (s < 3600) return tr('views.min_ago', { n: Math.floor(s / 60) });
  if (s < 86400) return tr('views.h_ago', { n: Math.floor(s / 3600) });
  return tr('views.d_ago', { n: Math.floor(s / 86400) });
}

/** The message of an error thrown by ctx.api (its problem's detail). */
export function errorText(err) {
  if (!err) return '';
  if (typeof err === 'string') return err;
  return err.detail || err.message || String(err);
}

/** The HTTP status of an error thrown by ctx.api, if it says. */
export function errorStatus(err) {
  return (err && (err.status || (err.response && err.response.status))) || 0;
}

/**
 * A modal dialog (<dialog>) with a title, body nodes and a confirm button. `onConfirm()` may throw
 * (its message is shown in the dialog) or return a promise; the dialog closes when it resolves.
 * Returns the dialog element (already open).
 */
export function openDialog({ title, body, confirmLabel, cancelLabel, onConfirm, className }) {
  const error = h('p', { class: 'rv-dialog-error', role: 'alert', hidden: true });
  const confirm = h('button', { type: 'submit', class: 'rv-btn rv-btn-primary', 'data-role': 'confirm' }, confirmLabel);
  const cancel = h('button', { type: 'button', class: 'rv-btn', 'data-role': 'cancel' }, cancelLabel);
  const form = h(
    'form',
    { method: 'dialog', class: 'rv-dialog-form' },
    h('h3', {}, title),
    body,
    error,
    h('div', { class: 'rv-dialog-actions' }, cancel, confirm),
  );
  const dialog = h('dialog', { class: `rv rv-dialog ${className || ''}` }, form);
  const close = () => {
    if (dialog.open) dialog.close();
    dialog.remove();
  };
  cancel.addEventListener('click', close);
  form.addEventListener('input', () => {
    error.hidden = true;
  });
  dialog.addEventListener('cancel', (ev) => {
    ev.preventDefault();
    close();
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    confirm.disabled = true;
    try {
      await onConfirm();
      close();
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    } finally {
      confirm.disabled = false;
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  const first = dialog.querySelector('textarea, input');
  if (first) first.focus();
  return dialog;
}

/** A coloured pill. */
export function badge(text, kind) {
  return h('span', { class: `rv-badge rv-badge-${kind}` }, text);
}
