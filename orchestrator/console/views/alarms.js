// The alarms view: the current alarms (GET /v1/console/alarms) most severe first, with severity
// colours, kind, subject, message and since; a filter open / acknowledged / all; an operator
// acknowledges one with a comment (POST /v1/console/alarms/{id}:ack {note}), after which it shows who
// acknowledged it and when.
//
// Live: the list is fetched again (at most once every 1.5 s) when the stream reports an
// acknowledgement, a link change, a parcel change or a retried notification, and every 30 s. A robot's
// state ("fleet.robot", up to once a second per robot: 200 a second for a large fleet) only counts
// when what its alarms derive from changed — its link or its errors. The whole list is always
// fetched (it is small) and filtered here, so the filter tabs can show their counts.

import {
  ago,
  badge,
  dateTime,
  errorText,
  h,
  langOf,
  listen,
  may,
  openDialog,
  replace,
  throttle,
  translator,
  singleView,
} from './view_kit.js';

const PATH = '/v1/console/alarms';
const REFRESH_MS = 30_000;
const THROTTLE_MS = 1_500;
const LIVE_TYPES = ['alarm.acked', 'fleet.link_changed', 'parcel', 'outbox.retried'];
const SEVERITIES = ['critical', 'warning', 'info'];

const view = singleView((root, ctx) => new AlarmsView(root, ctx));

/** Show the alarms in `root` (returns its unmount). */
export const mount = view.mount;

/** Stop refreshing and clear the view. */
export const unmount = view.unmount;

class AlarmsView {
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.tr = translator(ctx);
    this.lang = () => langOf(ctx);
    this.alarms = [];
    this.filter = 'open';
    this.loaded = false;
    this.error = '';
    this.fetchedAt = null;
    this.offs = [];
    this.robots = new Map(); // serial → what its alarms derive from, as last seen
    this.timer = null;
    this.refresh = throttle(() => this.load(), THROTTLE_MS);
  }

  start() {
    const tr = this.tr;
    this.status = h('span', { class: 'rv-sub', 'data-role': 'status' }, tr('views.loading'));
    this.summary = h('div', { class: 'rv-summary' });
    this.tabs = h('div', { class: 'rv-seg', role: 'tablist' });
    this.body = h('div', { class: 'rv-card rv-table-wrap' });
    this.section = h(
      'section',
      { class: 'rv rv-alarms', 'data-view': 'alarms' },
      h(
        'header',
        { class: 'rv-head' },
        h('div', {}, h('h2', {}, tr('alarms.title')), h('p', { class: 'rv-sub' }, tr('alarms.subtitle'))),
        h(
          'div',
          { class: 'rv-head-tools' },
          this.status,
          h('button', { type: 'button', class: 'rv-btn', onclick: () => this.load() }, tr('views.refresh')),
        ),
      ),
      h('div', { class: 'rv-toolbar' }, this.tabs, this.summary),
      this.body,
    );
    replace(this.root, this.section);
    for (const type of LIVE_TYPES) this.offs.push(listen(this.ctx.stream, type, () => this.refresh()));
    this.offs.push(listen(this.ctx.stream, 'fleet.robot', (msg) => this.robotChanged(msg)));
    this.offs.push(listen(this.ctx.stream, 'snapshot', (msg) => this.fromSnapshot(msg)));
    this.timer = setInterval(() => this.load(), REFRESH_MS);
    this.load();
  }

  stop() {
    clearInterval(this.timer);
    this.refresh.cancel();
    for (const off of this.offs) off();
    this.offs = [];
    this.stopped = true;
  }

  robotChanged(msg) {
    const view = msg && msg.view;
    if (!view || !view.serial) return;
    const errors = (view.errors || []).map((e) => `${e.level}:${e.type}`).sort().join(',');
    const key = `${view.link}|${view.online}|${errors}`;
    const before = this.robots.get(view.serial);
    this.robots.set(view.serial, key);
    if (before !== undefined && before !== key) this.refresh();
  }

  fromSnapshot(msg) {
    const robots = (msg && msg.fleet && msg.fleet.robots) || [];
    for (const view of robots) this.robotChanged({ view });
    if (msg && Array.isArray(msg.alarms)) {
      this.alarms = msg.alarms;
      this.loaded = true;
      this.render();
    }
  }

  async load() {
    try {
      const answer = await this.ctx.api.get(PATH);
      if (this.stopped) return;
      this.alarms = (answer && answer.alarms) || [];
      this.error = '';
      this.loaded = true;
      this.fetchedAt = new Date();
    } catch (err) {
      if (this.stopped) return;
      this.error = errorText(err);
    }
    this.render();
  }

  visible() {
    if (this.filter === 'open') return this.alarms.filter((a) => !a.acked);
    if (this.filter === 'acked') return this.alarms.filter((a) => a.acked);
    return this.alarms;
  }

  render() {
    const tr = this.tr;
    const lang = this.lang();
    this.status.textContent = this.error
      ? tr('views.error', { message: this.error })
      : this.fetchedAt
        ? tr('views.updated', { time: dateTime(this.fetchedAt.toISOString(), lang, true) })
        : '';
    this.status.classList.toggle('rv-error-text', Boolean(this.error));
    this.renderTabs();
    this.renderSummary();
    if (!this.loaded) {
      replace(this.body, h('p', { class: 'rv-empty' }, tr('views.loading')));
      return;
    }
    const rows = this.visible();
    if (!rows.length) {
      const text = this.filter === 'open' ? tr('alarms.none_open') : tr('alarms.none');
      replace(this.body, h('div', { class: 'rv-empty rv-empty-ok', 'data-role': 'empty' }, h('span', { class: 'rv-ok-mark' }, '✓'), text));
      return;
    }
    const head = ['severity', 'kind', 'subject', 'message', 'since', 'status'].map((c) =>
      h('th', { scope: 'col' }, tr(`alarms.c.${c}`)),
    );
    head.push(h('th', { scope: 'col', class: 'rv-col-action' }));
    const table = h(
      'table',
      { class: 'rv-table rv-alarm-table' },
      h('thead', {}, h('tr', {}, head)),
      h('tbody', {}, rows.map((a) => this.row(a, lang))),
    );
    replace(this.body, table);
  }

  renderTabs() {
    const tr = this.tr;
    const counts = {
      open: this.alarms.filter((a) => !a.acked).length,
      acked: this.alarms.filter((a) => a.acked).length,
      all: this.alarms.length,
    };
    replace(
      this.tabs,
      ['open', 'acked', 'all'].map((f) =>
        h(
          'button',
          {
            type: 'button',
            role: 'tab',
            class: 'rv-seg-btn',
            'aria-selected': String(this.filter === f),
            dataset: { filter: f },
            onclick: () => {
              this.filter = f;
              this.render();
            },
          },
          tr(`alarms.filter.${f}`),
          h('span', { class: 'rv-count' }, String(counts[f])),
        ),
      ),
    );
  }

  renderSummary() {
    const open = this.alarms.filter((a) => !a.acked);
    replace(
      this.summary,
      SEVERITIES.map((s) => {
        const n = open.filter((a) => a.severity === s).length;
        return h(
          'span',
          { class: `rv-sev-chip rv-sev-${s}${n ? '' : ' rv-zero'}`, dataset: { severity: s } },
          h('i', { class: 'rv-dot' }),
          this.tr(`alarms.sev.${s}`),
          h('b', {}, String(n)),
        );
      }),
    );
  }

  row(alarm, lang) {
    const tr = this.tr;
    const since = alarm.since
      ? h('span', { title: dateTime(alarm.since, lang, true) }, dateTime(alarm.since, lang), h('small', {}, ago(alarm.since, Date.now(), tr)))
      : tr('views.none');
    const status = alarm.acked
      ? h(
          'span',
          { class: 'rv-acked', 'data-role': 'acked' },
          tr('alarms.acked_by', { who: alarm.acked_by || '', time: dateTime(alarm.acked_at, lang) }),
          alarm.acked_note ? h('small', { class: 'rv-ack-note', 'data-role': 'ack-note' }, alarm.acked_note) : null,
        )
      : h('span', { class: 'rv-open' }, tr('alarms.open'));
    let action = null;
    if (!alarm.acked && may(this.ctx.user, 'operator')) {
      action = h(
        'button',
        { type: 'button', class: 'rv-btn rv-btn-small', 'data-role': 'ack', onclick: () => this.acknowledge(alarm) },
        tr('alarms.ack'),
      );
    }
    return h(
      'tr',
      { class: `rv-sev-row rv-sev-${alarm.severity}${alarm.acked ? ' rv-is-acked' : ''}`, dataset: { alarmId: alarm.id, kind: alarm.kind } },
      h('td', { class: 'rv-sev-cell' }, badge(tr(`alarms.sev.${alarm.severity}`), alarm.severity)),
      h('td', {}, tr(`alarms.kind.${alarm.kind}`)),
      h('td', { class: 'rv-mono' }, alarm.subject),
      h('td', { class: 'rv-msg' }, alarm.message),
      h('td', { class: 'rv-since' }, since),
      h('td', {}, status),
      h('td', { class: 'rv-col-action' }, action),
    );
  }

  acknowledge(alarm) {
    const tr = this.tr;
    const note = h('textarea', {
      name: 'note',
      rows: 3,
      maxlength: 500,
      placeholder: tr('alarms.ack_placeholder'),
      'data-role': 'note',
    });
    openDialog({
      title: tr('alarms.ack_title'),
      className: 'rv-ack-dialog',
      body: [
        h(
          'div',
          { class: `rv-dialog-subject rv-sev-${alarm.severity}` },
          badge(tr(`alarms.sev.${alarm.severity}`), alarm.severity),
          h('b', {}, tr(`alarms.kind.${alarm.kind}`)),
          h('span', { class: 'rv-mono' }, alarm.subject),
          h('p', {}, alarm.message),
        ),
        h('label', { class: 'rv-field' }, h('span', {}, tr('alarms.ack_comment')), note),
        h('p', { class: 'rv-note' }, tr('alarms.ack_logged')),
      ],
      confirmLabel: tr('alarms.ack_confirm'),
      cancelLabel: tr('views.cancel'),
      onConfirm: async () => {
        const path = `${PATH}/${encodeURIComponent(alarm.id)}:ack`;
        const acked = await this.ctx.api.post(path, { note: note.value.trim() });
        if (acked && acked.id) {
          this.alarms = this.alarms.map((a) => (a.id === acked.id ? acked : a));
          this.render();
        }
        this.refresh();
      },
    });
  }
}
