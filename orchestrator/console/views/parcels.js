// The parcels and orders view: search (tracking number, phone, state, window, stop for parcels;
// phone, state, kind, partner for orders), a results table with the recipients masked, and a details
// panel with the status history. An operator or admin can unmask the recipient ("查看完整信息"):
// a dialog asks for the reason, POST /v1/console/parcels/{tn}:reveal (or orders/{id}:reveal) answers
// the clear name and phone, which are shown in the panel with a note that the access is logged; they
// are kept only in this panel (never in the table, never stored) and go when another row is opened.
// An admin also gets the audit entries of the open parcel or order (GET /v1/console/audit).
//
// Live: an open parcel's details are fetched again (throttled) when the stream reports a change of
// that parcel.

import {
  badge,
  dateTime,
  errorText,
  h,
  langOf,
  listen,
  may,
  nameOf,
  openDialog,
  replace,
  throttle,
  translator,
  singleView,
} from './view_kit.js';

const BASE = '/v1/console';
const PARCEL_STATES = [
  'received', 'sorted', 'loaded', 'at_stop', 'picked_up', 'returned', 'handed_off', 'in_robot', 'delivered', 'failed',
];
const ORDER_STATES = [
  'created', 'accepted', 'refused', 'robot_assigned', 'robot_at_door', 'loaded', 'done', 'cancelled', 'failed',
];
const ORDER_KINDS = ['pickup', 'coffee'];
const STATE_TONE = {
  received: 'neutral', sorted: 'neutral', loaded: 'blue', at_stop: 'green', picked_up: 'done',
  returned: 'warning', handed_off: 'blue', in_robot: 'blue', delivered: 'done', failed: 'critical',
  created: 'neutral', accepted: 'blue', refused: 'critical', robot_assigned: 'blue', robot_at_door: 'green',
  done: 'done', cancelled: 'neutral',
};
const PAGE = 50;

const view = singleView((root, ctx) => new ParcelsView(root, ctx));

/** Show the search in `root` (returns its unmount). */
export const mount = view.mount;

/** Stop listening and clear the view. */
export const unmount = view.unmount;

function q(params) {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) search.append(k, v);
  const text = search.toString();
  return text ? `?${text}` : '';
}

class ParcelsView {
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.tr = translator(ctx);
    this.mode = 'parcels';
    this.rows = [];
    this.next = null;
    this.selected = null; // {mode, id}
    this.detail = null;
    this.revealed = null;
    this.audit = null;
    this.offs = [];
    this.reloadDetail = throttle(() => this.openDetail(this.selected, false), 1000);
  }

  get lang() {
    return langOf(this.ctx);
  }

  start() {
    const tr = this.tr;
    this.tabs = h('div', { class: 'rv-seg', role: 'tablist' });
    this.form = h('form', { class: 'rv-search', autocomplete: 'off' });
    this.count = h('span', { class: 'rv-sub', 'data-role': 'count' });
    this.table = h('div', { class: 'rv-card rv-table-wrap rv-results' });
    this.more = h('button', { type: 'button', class: 'rv-btn', hidden: true, onclick: () => this.search(true) }, tr('parcels.more'));
    this.panel = h('aside', { class: 'rv-card rv-detail', 'data-role': 'detail' });
    this.section = h(
      'section',
      { class: 'rv rv-parcels', 'data-view': 'parcels' },
      h('header', { class: 'rv-head' }, h('div', {}, h('h2', {}, tr('parcels.title'))), this.tabs),
      this.form,
      h(
        'div',
        { class: 'rv-split' },
        h('div', { class: 'rv-split-main' }, h('div', { class: 'rv-results-head' }, this.count), this.table, h('div', { class: 'rv-more' }, this.more)),
        this.panel,
      ),
    );
    replace(this.root, this.section);
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.search(false);
    });
    this.offs.push(
      listen(this.ctx.stream, 'parcel', (ev) => {
        if (this.selected && this.selected.mode === 'parcels' && ev && ev.id === this.selected.id) this.reloadDetail();
      }),
      listen(this.ctx.stream, 'order', (ev) => {
        if (this.selected && this.selected.mode === 'orders' && ev && ev.id === this.selected.id) this.reloadDetail();
      }),
    );
    this.renderTabs();
    this.renderForm();
    this.renderPanel();
    this.search(false);
  }

  stop() {
    this.reloadDetail.cancel();
    for (const off of this.offs) off();
    this.offs = [];
    this.stopped = true;
    this.revealed = null;
  }

  renderTabs() {
    replace(
      this.tabs,
      ['parcels', 'orders'].map((m) =>
        h(
          'button',
          {
            type: 'button',
            role: 'tab',
            class: 'rv-seg-btn',
            'aria-selected': String(this.mode === m),
            dataset: { mode: m },
            onclick: () => {
              if (this.mode === m) return;
              this.mode = m;
              this.selected = null;
              this.detail = null;
              this.revealed = null;
              this.audit = null;
              this.renderTabs();
              this.renderForm();
              this.renderPanel();
              this.search(false);
            },
          },
          this.tr(`parcels.tab.${m}`),
        ),
      ),
    );
  }

  field(name, label, control) {
    control.name = name;
    return h('label', { class: 'rv-field' }, h('span', {}, label), control);
  }

  select(values, prefix) {
    return h(
      'select',
      {},
      h('option', { value: '' }, this.tr('parcels.f.any')),
      values.map((v) => h('option', { value: v }, this.tr(`${prefix}${v}`))),
    );
  }

  renderForm() {
    const tr = this.tr;
    const input = (placeholder, extra) => h('input', { type: 'search', placeholder, ...(extra || {}) });
    const fields =
      this.mode === 'parcels'
        ? [
            this.field('tracking', tr('parcels.f.tracking'), input(tr('parcels.ph.tracking'))),
            this.field('phone', tr('parcels.f.phone'), input(tr('parcels.ph.phone'), { inputmode: 'tel' })),
            this.field('state', tr('parcels.f.state'), this.select(PARCEL_STATES, 'parcels.state.')),
            this.field('window', tr('parcels.f.window'), input(tr('parcels.ph.window'))),
            this.field('stop', tr('parcels.f.stop'), input(tr('parcels.ph.stop'))),
          ]
        : [
            this.field('phone', tr('parcels.f.phone'), input(tr('parcels.ph.phone'), { inputmode: 'tel' })),
            this.field('state', tr('parcels.f.state'), this.select(ORDER_STATES, 'parcels.ostate.')),
            this.field('kind', tr('parcels.f.kind'), this.select(ORDER_KINDS, 'parcels.okind.')),
            this.field('partner', tr('parcels.f.partner'), input(tr('parcels.ph.partner'))),
          ];
    replace(
      this.form,
      fields,
      h(
        'div',
        { class: 'rv-search-actions' },
        h('button', { type: 'submit', class: 'rv-btn rv-btn-primary', 'data-role': 'search' }, tr('parcels.search')),
        h(
          'button',
          {
            type: 'button',
            class: 'rv-btn',
            onclick: () => {
              this.form.reset();
              this.search(false);
            },
          },
          tr('parcels.clear'),
        ),
      ),
    );
  }

  params() {
    const data = new FormData(this.form);
    const out = {};
    for (const [k, v] of data.entries()) out[k] = String(v).trim();
    return out;
  }

  async search(more) {
    const params = this.params();
    let path;
    if (this.mode === 'parcels') {
      path = `${BASE}/parcels${q({ ...params, limit: PAGE, after_id: more ? this.next : '' })}`;
    } else {
      path = `${BASE}/orders${q({ ...params, limit: 200 })}`;
    }
    try {
      const answer = await this.ctx.api.get(path);
      if (this.stopped) return;
      const found = this.mode === 'parcels' ? answer.parcels : answer.orders;
      this.rows = more ? this.rows.concat(found) : found;
      this.next = this.mode === 'parcels' ? answer.next_after_id : null;
      this.error = '';
    } catch (err) {
      if (this.stopped) return;
      this.rows = more ? this.rows : [];
      this.next = null;
      this.error = errorText(err);
    }
    this.renderTable();
  }

  renderTable() {
    const tr = this.tr;
    this.more.hidden = !this.next;
    this.count.textContent = this.error ? tr('views.error', { message: this.error }) : tr('parcels.results', { n: this.rows.length + (this.next ? '+' : '') });
    this.count.classList.toggle('rv-error-text', Boolean(this.error));
    if (!this.rows.length) {
      replace(this.table, h('p', { class: 'rv-empty' }, this.error ? '' : tr('parcels.no_results')));
      return;
    }
    const cols =
      this.mode === 'parcels'
        ? ['tracking', 'state', 'size', 'destination', 'window', 'stop', 'carrier', 'recipient', 'phone', 'updated']
        : ['order', 'kind', 'state', 'place', 'time_window', 'robot', 'contact', 'phone', 'updated'];
    const body = this.rows.map((r) => (this.mode === 'parcels' ? this.parcelRow(r) : this.orderRow(r)));
    replace(
      this.table,
      h(
        'table',
        { class: 'rv-table rv-clickable' },
        h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, tr(`parcels.c.${c}`))))),
        h('tbody', {}, body),
      ),
    );
  }

  rowAttrs(mode, id) {
    const selected = this.selected && this.selected.mode === mode && this.selected.id === id;
    return {
      class: selected ? 'rv-selected' : '',
      tabindex: 0,
      dataset: { id },
      onclick: () => this.openDetail({ mode, id }, true),
      onkeydown: (ev) => {
        if (ev.key === 'Enter') this.openDetail({ mode, id }, true);
      },
    };
  }

  stateBadge(state, prefix) {
    return badge(this.tr(`${prefix}${state}`), STATE_TONE[state] || 'neutral');
  }

  parcelRow(p) {
    const none = this.tr('views.none');
    const carrier = p.cart || p.robot ? `${p.cart || p.robot}${p.compartment ? ` / #${p.compartment}` : ''}` : none;
    return h(
      'tr',
      this.rowAttrs('parcels', p.tracking_number),
      h('td', { class: 'rv-mono rv-strong' }, p.tracking_number),
      h('td', {}, this.stateBadge(p.state, 'parcels.state.')),
      h('td', {}, h('span', { class: 'rv-size' }, p.size)),
      h('td', {}, destination(p.destination)),
      h('td', {}, p.window || none),
      h('td', {}, p.stop || none),
      h('td', { class: 'rv-mono' }, carrier),
      h('td', {}, p.recipient.name || none),
      h('td', { class: 'rv-mono' }, p.recipient.phone || none),
      h('td', { class: 'rv-dim' }, dateTime(p.updated_at, this.lang)),
    );
  }

  orderRow(o) {
    const none = this.tr('views.none');
    return h(
      'tr',
      this.rowAttrs('orders', o.id),
      h('td', { class: 'rv-mono rv-strong' }, o.id),
      h('td', {}, this.tr(`parcels.okind.${o.kind}`)),
      h('td', {}, this.stateBadge(o.state, 'parcels.ostate.')),
      h('td', {}, o.place),
      h('td', { class: 'rv-dim' }, `${dateTime(o.earliest_at, this.lang)} – ${dateTime(o.latest_at, this.lang)}`),
      h('td', { class: 'rv-mono' }, o.robot || none),
      h('td', {}, o.contact.name || none),
      h('td', { class: 'rv-mono' }, o.contact.phone || none),
      h('td', { class: 'rv-dim' }, dateTime(o.updated_at, this.lang)),
    );
  }

  async openDetail(sel, fresh) {
    if (!sel) return;
    if (fresh) {
      this.selected = sel;
      this.revealed = null;
      this.audit = null;
      this.detail = null;
      this.renderTable();
      this.renderPanel();
    }
    const path = sel.mode === 'parcels' ? `${BASE}/parcels/${encodeURIComponent(sel.id)}` : `${BASE}/orders/${encodeURIComponent(sel.id)}`;
    try {
      const answer = await this.ctx.api.get(path);
      if (this.stopped || this.selected !== sel) return;
      this.detail = answer;
      this.detailError = '';
    } catch (err) {
      if (this.stopped || this.selected !== sel) return;
      this.detailError = errorText(err);
    }
    this.renderPanel();
  }

  renderPanel() {
    const tr = this.tr;
    if (!this.selected) {
      replace(this.panel, h('div', { class: 'rv-empty rv-detail-empty' }, h('span', { class: 'rv-empty-icon' }, '⌕'), tr('parcels.pick_one')));
      return;
    }
    if (!this.detail) {
      replace(this.panel, h('p', { class: this.detailError ? 'rv-empty rv-error-text' : 'rv-empty' }, this.detailError || tr('views.loading')));
      return;
    }
    const isParcel = this.selected.mode === 'parcels';
    const item = isParcel ? this.detail.parcel : this.detail.order;
    const person = isParcel ? item.recipient : item.contact;
    const title = isParcel ? item.tracking_number : item.id;
    const stateBadge = this.stateBadge(item.state, isParcel ? 'parcels.state.' : 'parcels.ostate.');
    replace(
      this.panel,
      h(
        'div',
        { class: 'rv-detail-head' },
        h('div', {}, h('small', { class: 'rv-dim' }, tr(isParcel ? 'parcels.tab.parcels' : 'parcels.tab.orders')), h('h3', { class: 'rv-mono' }, title)),
        stateBadge,
      ),
      h('dl', { class: 'rv-facts' }, isParcel ? this.parcelFacts(item) : this.orderFacts(item)),
      this.personBox(item, person),
      this.auditBox(),
      h('h4', {}, tr('parcels.history')),
      this.history(this.detail.events || [], isParcel),
    );
  }

  parcelFacts(p) {
    const tr = this.tr;
    const none = tr('views.none');
    return facts([
      [tr('parcels.c.size'), p.size],
      [tr('parcels.c.destination'), destination(p.destination)],
      [tr('parcels.c.office'), p.office ? tr('parcels.yes') : tr('parcels.no')],
      [tr('parcels.c.window'), p.window || none],
      [tr('parcels.c.stop'), p.stop || none],
      [tr('parcels.c.carrier'), p.cart || p.robot ? `${p.cart || p.robot}${p.compartment ? ` / #${p.compartment}` : ''}` : none],
      [tr('parcels.c.rolled'), String(p.rolled)],
      p.reason ? [tr('parcels.c.reason'), p.reason] : null,
      [tr('parcels.c.created'), dateTime(p.created_at, this.lang)],
      [tr('parcels.c.updated'), dateTime(p.updated_at, this.lang)],
    ]);
  }

  orderFacts(o) {
    const tr = this.tr;
    const none = tr('views.none');
    return facts([
      [tr('parcels.c.kind'), tr(`parcels.okind.${o.kind}`)],
      [tr('parcels.c.partner'), `${o.partner} · ${o.partner_ref}`],
      [tr('parcels.c.place'), o.origin ? `${o.origin} → ${o.place}` : o.place],
      [tr('parcels.c.size'), o.size],
      [tr('parcels.c.time_window'), `${dateTime(o.earliest_at, this.lang)} – ${dateTime(o.latest_at, this.lang)}`],
      [tr('parcels.c.eta'), o.eta ? dateTime(o.eta, this.lang) : none],
      [tr('parcels.c.robot'), o.robot || none],
      o.reason ? [tr('parcels.c.reason'), o.reason] : null,
      [tr('parcels.c.created'), dateTime(o.created_at, this.lang)],
    ]);
  }

  personBox(item, person) {
    const tr = this.tr;
    const label = this.selected.mode === 'parcels' ? tr('parcels.c.recipient') : tr('parcels.c.contact');
    if (item.personal_data_purged) {
      return h('div', { class: 'rv-person rv-purged' }, h('b', {}, label), h('p', {}, tr('parcels.purged')));
    }
    const box = h('div', { class: 'rv-person', 'data-role': 'person' }, h('div', { class: 'rv-person-label' }, label));
    if (this.revealed) {
      const r = this.revealed;
      box.classList.add('rv-revealed');
      box.append(
        h(
          'div',
          { class: 'rv-person-values' },
          h('span', { class: 'rv-person-name', 'data-role': 'clear-name' }, r.name),
          h('span', { class: 'rv-mono rv-person-phone', 'data-role': 'clear-phone' }, r.phone),
          h('button', { type: 'button', class: 'rv-btn rv-btn-small', onclick: () => this.hide() }, tr('parcels.hide')),
        ),
        h('p', { class: 'rv-note rv-logged', 'data-role': 'logged' }, h('i', { class: 'rv-lock' }), tr('parcels.revealed_note', { who: r.who, time: dateTime(r.at, this.lang, true), reason: r.reason })),
      );
    } else {
      box.append(
        h(
          'div',
          { class: 'rv-person-values' },
          h('span', { class: 'rv-person-name' }, person.name || tr('views.none')),
          h('span', { class: 'rv-mono rv-person-phone' }, person.phone || tr('views.none')),
          may(this.ctx.user, 'operator')
            ? h('button', { type: 'button', class: 'rv-btn rv-btn-small rv-btn-primary', 'data-role': 'unmask', onclick: () => this.unmask() }, tr('parcels.unmask'))
            : null,
        ),
      );
    }
    if (may(this.ctx.user, 'admin')) {
      box.append(
        h('a', { href: '#', class: 'rv-link', 'data-role': 'audit-link', onclick: (ev) => { ev.preventDefault(); this.loadAudit(); } }, tr('parcels.audit_link'), ' →'),
      );
    }
    return box;
  }

  hide() {
    this.revealed = null;
    this.renderPanel();
  }

  unmask() {
    const tr = this.tr;
    const sel = this.selected;
    const reason = h('textarea', { name: 'reason', rows: 3, maxlength: 500, placeholder: tr('parcels.unmask_placeholder'), 'data-role': 'reason' });
    openDialog({
      title: tr('parcels.unmask_title'),
      className: 'rv-unmask-dialog',
      body: [
        h('p', { class: 'rv-dialog-subject' }, h('span', { class: 'rv-mono rv-strong' }, sel.id)),
        h('p', {}, tr('parcels.unmask_intro')),
        h('label', { class: 'rv-field' }, h('span', {}, tr('parcels.unmask_reason')), reason),
        h('p', { class: 'rv-note rv-logged' }, h('i', { class: 'rv-lock' }), tr('parcels.unmask_logged')),
      ],
      confirmLabel: tr('parcels.unmask_confirm'),
      cancelLabel: tr('views.cancel'),
      onConfirm: async () => {
        const text = reason.value.trim();
        if (text.length < 3) throw new Error(tr('parcels.unmask_short'));
        const path = `${BASE}/${sel.mode}/${encodeURIComponent(sel.id)}:reveal`;
        const answer = await this.ctx.api.post(path, { reason: text });
        if (this.selected !== sel) return;
        this.revealed = { name: answer.name, phone: answer.phone, reason: text, who: nameOf(this.ctx.user), at: new Date().toISOString() };
        this.renderPanel();
        if (this.audit) this.loadAudit();
      },
    });
  }

  async loadAudit() {
    const sel = this.selected;
    const entity = sel.mode === 'parcels' ? 'parcel' : 'order';
    try {
      const answer = await this.ctx.api.get(`${BASE}/audit${q({ entity, entity_id: sel.id, limit: 50 })}`);
      if (this.selected !== sel) return;
      this.audit = { entries: answer.entries || [], error: '' };
    } catch (err) {
      this.audit = { entries: [], error: errorText(err) };
    }
    this.renderPanel();
  }

  auditBox() {
    if (!this.audit) return null;
    const tr = this.tr;
    const list = this.audit.entries.length
      ? h(
          'ul',
          { class: 'rv-audit' },
          this.audit.entries.map((e) =>
            h(
              'li',
              { dataset: { auditId: e.id } },
              h('div', {}, h('b', {}, e.actor), h('span', { class: 'rv-dim' }, ` (${e.role}) · `), this.auditAction(e.action), h('span', { class: 'rv-dim' }, ` · ${dateTime(e.at, this.lang, true)}`)),
              e.reason ? h('div', { class: 'rv-audit-reason' }, `“${e.reason}”`) : null,
            ),
          ),
        )
      : h('p', { class: 'rv-dim' }, this.audit.error || tr('parcels.audit_none'));
    return h('div', { class: 'rv-audit-box', 'data-role': 'audit' }, h('h4', {}, tr('parcels.audit_title')), list);
  }

  auditAction(action) {
    const text = this.tr(`parcels.audit.${action}`);
    return text === `parcels.audit.${action}` ? action : text;
  }

  history(events, isParcel) {
    const tr = this.tr;
    if (!events.length) return h('p', { class: 'rv-dim' }, tr('parcels.no_history'));
    const prefix = isParcel ? 'parcels.state.' : 'parcels.ostate.';
    const items = events
      .slice()
      .reverse()
      .map((e) => {
        const kind = tr(`parcels.event.${e.kind}`);
        const data = Object.entries(e.data || {}).filter(([, v]) => v !== null && v !== '');
        return h(
          'li',
          { class: `rv-tone-${STATE_TONE[e.to_state] || 'neutral'}`, dataset: { kind: e.kind } },
          h('i', { class: 'rv-tl-dot' }),
          h(
            'div',
            { class: 'rv-tl-body' },
            h('div', { class: 'rv-tl-line' }, h('b', {}, kind === `parcels.event.${e.kind}` ? e.kind : kind), h('span', { class: 'rv-dim' }, dateTime(e.at, this.lang, true))),
            h(
              'div',
              { class: 'rv-tl-states' },
              e.from_state ? [tr(`${prefix}${e.from_state}`), ' → '] : null,
              h('span', { class: 'rv-strong' }, tr(`${prefix}${e.to_state}`)),
            ),
            data.length ? h('div', { class: 'rv-tl-data' }, data.map(([k, v]) => h('span', { class: 'rv-kv' }, `${k}: ${v}`))) : null,
          ),
        );
      });
    return h('ol', { class: 'rv-timeline-list', 'data-role': 'history' }, items);
  }
}

function destination(d) {
  if (!d) return '';
  const where = d.dorm || d.building || '';
  const parts = [where, d.room].filter(Boolean).join(' ');
  return d.place && d.place !== where ? `${parts} (${d.place})` : parts;
}

function facts(pairs) {
  return pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]);
}
