// The delivery windows timeline (GET /v1/console/windows): a horizontal time axis over the day's
// windows, one band per window and under it one row per cart, each of the cart's stops a block placed
// by its dwell time and coloured by its state (planned / under way / at stop / done), with its parcels,
// picked-up and unclaimed counts and a progress bar; a "now" line; a click on a stop shows its details.
//
// Scale: the axis spans whole hours around the windows (and now, when it is near). It opens at
// DEFAULT_PX_PER_MIN (a 10-minute stop is 100 px: its name and counts stay readable), scrolled to
// now, the label column staying put while the day scrolls sideways; zoom buttons halve or double the
// scale, down to the whole day in the width available.
//
// Live: fetched again when the stream reports parcel changes (at most every 2 s) and every 30 s.

import {
  badge,
  dateTime,
  errorStatus,
  errorText,
  h,
  hhmm,
  langOf,
  listen,
  replace,
  throttle,
  translator,
  singleView,
} from './view_kit.js';

const PATH = '/v1/console/windows';
const REFRESH_MS = 30_000;
const THROTTLE_MS = 2_000;
const LABEL_PX = 200;
const DEFAULT_PX_PER_MIN = 10;
const MAX_PX_PER_MIN = 32;
const MIN = 60_000;
const HOUR = 60 * MIN;
const NEAR_MS = 2 * HOUR;
const STOP_STATES = ['planned', 'under_way', 'at_stop', 'done'];
const WINDOW_TONE = { upcoming: 'neutral', open: 'green', closed: 'done' };

const view = singleView((root, ctx) => new WindowsView(root, ctx));

/** Show the timeline in `root` (returns its unmount). */
export const mount = view.mount;

/** Stop refreshing and clear the view. */
export const unmount = view.unmount;

function ms(iso) {
  const t = iso ? new Date(iso).getTime() : NaN;
  return Number.isNaN(t) ? null : t;
}

function stopStart(s) {
  return ms(s.start) ?? ms(s.arrive);
}

function stopEnd(s) {
  return ms(s.end) ?? stopStart(s);
}

/** A stop's name without the "停靠点"/"stop" every stop has (the block is small; the tooltip and the
 * details give the full name). */
function shortLabel(label) {
  const short = String(label).replace(/\s*(停靠点|stop)$/i, '');
  return short || String(label);
}

function sum(list, key) {
  return list.reduce((n, x) => n + (Number(x[key]) || 0), 0);
}

function allStops(win) {
  return (win.carts || []).flatMap((c) => c.stops || []);
}

class WindowsView {
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.tr = translator(ctx);
    this.data = null;
    this.error = '';
    this.status = 0;
    this.selected = null; // {window, cart, stop}
    this.offs = [];
    this.scrolled = false;
    this.ppm = DEFAULT_PX_PER_MIN;
    this.refresh = throttle(() => this.load(), THROTTLE_MS);
    this.relayout = throttle(() => this.render(), 200);
  }

  get lang() {
    return langOf(this.ctx);
  }

  start() {
    const tr = this.tr;
    this.sub = h('p', { class: 'rv-sub', 'data-role': 'day' }, tr('windows.subtitle'));
    this.updated = h('span', { class: 'rv-sub', 'data-role': 'status' }, tr('views.loading'));
    this.board = h('div', { class: 'rv-card wt-card' });
    this.detail = h('div', { class: 'wt-detail', 'data-role': 'stop-detail' });
    this.section = h(
      'section',
      { class: 'rv rv-windows', 'data-view': 'windows' },
      h(
        'header',
        { class: 'rv-head' },
        h('div', {}, h('h2', {}, tr('windows.title')), this.sub),
        h(
          'div',
          { class: 'rv-head-tools' },
          this.updated,
          h('button', { type: 'button', class: 'rv-btn', onclick: () => this.load() }, tr('views.refresh')),
        ),
      ),
      h(
        'div',
        { class: 'rv-toolbar wt-legend' },
        STOP_STATES.map((s) => h('span', { class: `wt-key wt-st-${s}` }, h('i', {}), tr(`windows.stop.${s}`))),
        h('span', { class: 'wt-key wt-key-now' }, h('i', {}), tr('windows.now')),
        h('span', { class: 'rv-dim wt-hint' }, tr('windows.detail_hint')),
        h(
          'span',
          { class: 'wt-zoom' },
          h('button', { type: 'button', class: 'rv-btn rv-btn-small', 'data-role': 'zoom-out', title: tr('windows.zoom_out'), onclick: () => this.zoom(0.5) }, '−'),
          h('button', { type: 'button', class: 'rv-btn rv-btn-small', 'data-role': 'zoom-in', title: tr('windows.zoom_in'), onclick: () => this.zoom(2) }, '+'),
        ),
      ),
      this.board,
      this.detail,
    );
    replace(this.root, this.section);
    this.offs.push(listen(this.ctx.stream, 'parcel', () => this.refresh()));
    this.timer = setInterval(() => this.load(), REFRESH_MS);
    if (typeof ResizeObserver === 'function') {
      this.resize = new ResizeObserver(() => this.relayout());
      this.resize.observe(this.board);
    }
    this.load();
  }

  stop() {
    clearInterval(this.timer);
    this.refresh.cancel();
    this.relayout.cancel();
    if (this.resize) this.resize.disconnect();
    for (const off of this.offs) off();
    this.offs = [];
    this.stopped = true;
  }

  zoom(factor) {
    const fit = this.fitPpm || 0;
    const next = Math.min(MAX_PX_PER_MIN, Math.max(fit, this.ppm * factor));
    this.ppm = factor < 1 && next <= fit ? fit : next;
    this.scrolled = false;
    this.render();
  }

  async load() {
    try {
      const answer = await this.ctx.api.get(PATH);
      if (this.stopped) return;
      this.data = answer;
      this.error = '';
      this.status = 0;
      this.fetchedAt = new Date();
    } catch (err) {
      if (this.stopped) return;
      this.error = errorText(err);
      this.status = errorStatus(err);
    }
    this.render();
  }

  render() {
    const tr = this.tr;
    const lang = this.lang;
    this.updated.textContent = this.error
      ? tr('views.error', { message: this.error })
      : this.fetchedAt
        ? tr('views.updated', { time: dateTime(this.fetchedAt.toISOString(), lang, true) })
        : tr('views.loading');
    this.updated.classList.toggle('rv-error-text', Boolean(this.error));
    if (!this.data) {
      const text = this.status === 503 ? tr('windows.unavailable') : this.error ? tr('views.error', { message: this.error }) : tr('views.loading');
      replace(this.board, h('p', { class: 'rv-empty', 'data-role': 'empty' }, text));
      return;
    }
    const windows = this.data.windows || [];
    const stops = windows.flatMap(allStops);
    const carts = new Set(windows.flatMap((w) => (w.carts || []).filter((c) => (c.stops || []).length).map((c) => c.cart)));
    this.sub.textContent = `${tr('windows.day', { day: this.data.day || '' })} · ${tr('windows.totals', { carts: carts.size, stops: stops.length, parcels: sum(stops, 'parcels') })}`;
    if (!windows.length) {
      replace(this.board, h('p', { class: 'rv-empty', 'data-role': 'empty' }, tr('windows.no_windows')));
      this.renderDetail();
      return;
    }
    this.renderBoard(windows);
    this.renderDetail();
  }

  axis(windows) {
    const now = ms(this.data.now);
    let lo = Infinity;
    let hi = -Infinity;
    for (const w of windows) {
      for (const t of [ms(w.start), ms(w.end), ...allStops(w).flatMap((s) => [stopStart(s), stopEnd(s), ms(s.arrive)])]) {
        if (t === null) continue;
        lo = Math.min(lo, t);
        hi = Math.max(hi, t);
      }
    }
    if (now !== null && now >= lo - NEAR_MS && now <= hi + NEAR_MS) {
      lo = Math.min(lo, now);
      hi = Math.max(hi, now);
    }
    // whole hours of the viewer's clock around it, at least one hour
    const from = new Date(lo);
    from.setMinutes(0, 0, 0);
    const to = new Date(hi);
    if (to.getMinutes() || to.getSeconds() || to.getMilliseconds()) to.setHours(to.getHours() + 1, 0, 0, 0);
    const start = from.getTime();
    const end = Math.max(to.getTime(), start + HOUR);
    const width = Math.max(0, (this.board.clientWidth || 1000) - LABEL_PX - 2);
    this.fitPpm = width / ((end - start) / MIN);
    const ppm = Math.max(this.fitPpm, this.ppm);
    return { start, end, now, ppm, px: (t) => ((t - start) / MIN) * ppm, trackPx: ((end - start) / MIN) * ppm };
  }

  renderBoard(windows) {
    const tr = this.tr;
    const ax = this.axis(windows);
    const ticks = [];
    const halfHour = ax.ppm * 30 >= 60;
    for (let t = ax.start; t <= ax.end; t += halfHour ? 30 * MIN : HOUR) {
      const major = new Date(t).getMinutes() === 0;
      ticks.push(h('div', { class: `wt-tick${major ? '' : ' wt-tick-minor'}`, style: { left: `${ax.px(t)}px` } }, major || ax.ppm * 30 >= 120 ? hhmm(new Date(t).toISOString(), this.lang) : ''));
    }
    const grid = h(
      'div',
      { class: 'wt-grid', style: { width: `${LABEL_PX + ax.trackPx}px`, '--wt-label': `${LABEL_PX}px` } },
      h('div', { class: 'wt-row wt-axis' }, h('div', { class: 'wt-label' }), h('div', { class: 'wt-track', style: { width: `${ax.trackPx}px` } }, ticks)),
      windows.map((w) => this.windowRows(w, ax)),
    );
    if (ax.now !== null && ax.now >= ax.start && ax.now <= ax.end) {
      grid.append(
        h(
          'div',
          { class: 'wt-now', 'data-role': 'now', style: { left: `${LABEL_PX + ax.px(ax.now)}px` } },
          h('span', {}, `${tr('windows.now')} ${hhmm(this.data.now, this.lang)}`),
        ),
      );
    }
    const scroller = h('div', { class: 'wt-scroll' }, grid);
    const keep = this.board.querySelector('.wt-scroll');
    const left = keep ? keep.scrollLeft : null;
    replace(this.board, scroller);
    if (left !== null && this.scrolled) scroller.scrollLeft = left;
    else if (ax.now !== null) {
      scroller.scrollLeft = Math.max(0, ax.px(ax.now) - (scroller.clientWidth - LABEL_PX) / 3);
      this.scrolled = true;
    }
  }

  windowRows(w, ax) {
    const tr = this.tr;
    const lang = this.lang;
    const stops = allStops(w);
    const ws = ms(w.start);
    const we = ms(w.end);
    const band = (cls, content) =>
      ws !== null && we !== null
        ? h('div', { class: `wt-band ${cls} wt-win-${w.state}`, style: { left: `${ax.px(ws)}px`, width: `${Math.max(2, ax.px(we) - ax.px(ws))}px` } }, content)
        : null;
    const head = h(
      'div',
      { class: `wt-row wt-window wt-win-${w.state}`, dataset: { window: w.id, state: w.state } },
      h(
        'div',
        { class: 'wt-label' },
        h('div', { class: 'wt-win-title' }, h('b', {}, tr('windows.window', { id: w.id })), badge(tr(`windows.state.${w.state}`), WINDOW_TONE[w.state] || 'neutral')),
        h('div', { class: 'wt-win-time' }, `${hhmm(w.start, lang)} – ${hhmm(w.end, lang)}`),
        h(
          'div',
          { class: 'rv-dim wt-win-sum' },
          stops.length
            ? tr('windows.win_sum', { carts: (w.carts || []).filter((c) => (c.stops || []).length).length, parcels: sum(stops, 'parcels') })
            : tr('windows.no_carts'),
        ),
      ),
      h(
        'div',
        { class: 'wt-track', style: { width: `${ax.trackPx}px` } },
        band(
          'wt-band-head',
          h(
            'span',
            { class: 'wt-band-text' },
            stops.length
              ? tr('windows.counts', { parcels: sum(stops, 'parcels'), picked: sum(stops, 'picked_up'), unclaimed: sum(stops, 'unclaimed') })
              : tr('windows.no_carts'),
          ),
        ),
      ),
    );
    // a cart with no stop in this window gets no row: the window lists the carts serving it
    const carts = (w.carts || []).filter((c) => (c.stops || []).length).map((c) =>
      h(
        'div',
        { class: 'wt-row wt-cart', dataset: { cart: c.cart, window: w.id } },
        h('div', { class: 'wt-label wt-cart-label' }, h('i', { class: 'wt-cart-icon' }), h('span', { class: 'rv-mono' }, c.cart), h('small', { class: 'rv-dim' }, tr('windows.n_stops', { n: (c.stops || []).length }))),
        h('div', { class: 'wt-track', style: { width: `${ax.trackPx}px` } }, band('wt-band-cart', null), (c.stops || []).map((s) => this.stopBlock(w, c, s, ax))),
      ),
    );
    return [head, carts];
  }

  stopBlock(w, c, s, ax) {
    const tr = this.tr;
    const lang = this.lang;
    const t0 = stopStart(s);
    const t1 = stopEnd(s);
    if (t0 === null) return null;
    const left = ax.px(t0);
    const width = Math.max(8, ax.px(t1) - left);
    const parcels = Number(s.parcels) || 0;
    const picked = Number(s.picked_up) || 0;
    const unclaimed = Number(s.unclaimed) || 0;
    const pct = (n) => (parcels ? `${(100 * n) / parcels}%` : '0%');
    const selected = this.selected && this.selected.window === w.id && this.selected.cart === c.cart && this.selected.stop === s.stop && this.selected.start === s.start;
    const title = [
      `${s.label || s.stop} · ${tr(`windows.stop.${s.state}`)}`,
      `${tr('windows.arrive')} ${hhmm(s.arrive, lang)} · ${tr('windows.dwell')} ${hhmm(s.start, lang)}–${hhmm(s.end, lang)}`,
      tr('windows.counts', { parcels, picked, unclaimed }),
    ].join('\n');
    const arrive = ms(s.arrive);
    const approach =
      arrive !== null && arrive < t0 && (s.state === 'planned' || s.state === 'under_way')
        ? h('div', { class: `wt-approach wt-st-${s.state}`, style: { left: `${ax.px(arrive)}px`, width: `${left - ax.px(arrive)}px` } })
        : null;
    const block = h(
      'button',
      {
        type: 'button',
        class: `wt-stop wt-st-${s.state}${selected ? ' wt-selected' : ''}${width < 60 ? ' wt-narrow' : ''}`,
        style: { left: `${left}px`, width: `${width}px` },
        title,
        dataset: { stop: s.stop, state: s.state, parcels, pickedUp: picked, unclaimed },
        onclick: () => {
          this.selected = { window: w.id, cart: c.cart, stop: s.stop, start: s.start };
          this.render();
        },
      },
      h('span', { class: 'wt-stop-label' }, shortLabel(s.label || s.stop)),
      h(
        'span',
        { class: 'wt-stop-counts' },
        h('span', { class: 'wt-c-parcels', title: tr('windows.parcels') }, h('b', {}, String(parcels)), tr('windows.short_parcels')),
        h('span', { class: 'wt-c-picked', title: tr('windows.picked_up') }, `${tr('windows.short_picked')} ${picked}`),
        unclaimed ? h('span', { class: 'wt-c-unclaimed', title: tr('windows.unclaimed') }, `${tr('windows.short_unclaimed')} ${unclaimed}`) : null,
      ),
      h('span', { class: 'wt-progress' }, h('i', { class: 'wt-p-picked', style: { width: pct(picked) } }), h('i', { class: 'wt-p-unclaimed', style: { width: pct(unclaimed) } })),
    );
    return [approach, block];
  }

  renderDetail() {
    const tr = this.tr;
    const lang = this.lang;
    const sel = this.selected;
    const w = sel && (this.data.windows || []).find((x) => x.id === sel.window);
    const c = w && (w.carts || []).find((x) => x.cart === sel.cart);
    const s = c && (c.stops || []).find((x) => x.stop === sel.stop && x.start === sel.start);
    if (!s) {
      replace(this.detail);
      return;
    }
    const parcels = Number(s.parcels) || 0;
    const cell = (label, value, cls) => h('div', { class: `wt-stat ${cls || ''}` }, h('small', {}, label), h('b', {}, value));
    replace(
      this.detail,
      h(
        'div',
        { class: 'rv-card wt-detail-card' },
        h(
          'div',
          { class: 'rv-detail-head' },
          h('div', {}, h('small', { class: 'rv-dim' }, `${tr('windows.window', { id: w.id })} · ${tr('windows.cart')} ${c.cart}`), h('h3', {}, s.label || s.stop, ' ', h('small', { class: 'rv-dim rv-mono' }, s.stop))),
          badge(tr(`windows.stop.${s.state}`), `st-${s.state}`),
          h('button', { type: 'button', class: 'rv-btn rv-btn-small', onclick: () => { this.selected = null; this.render(); } }, tr('views.close')),
        ),
        h(
          'div',
          { class: 'wt-stats' },
          cell(tr('windows.arrive'), hhmm(s.arrive, lang) || tr('views.none')),
          cell(tr('windows.dwell'), `${hhmm(s.start, lang)} – ${hhmm(s.end, lang)}`),
          cell(tr('windows.parcels'), String(parcels)),
          cell(tr('windows.picked_up'), String(Number(s.picked_up) || 0), 'wt-stat-ok'),
          cell(tr('windows.unclaimed'), String(Number(s.unclaimed) || 0), Number(s.unclaimed) ? 'wt-stat-warn' : ''),
        ),
      ),
    );
  }
}
