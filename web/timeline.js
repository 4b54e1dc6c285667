// The day timeline: 24 h (or 23/25 on a clock change) zooming to a few minutes; recorded
// spans (solid), gaps (hatched, and listed as text), events (marks with their label); a
// cursor moved by the mouse or the keyboard; hovering shows the thumbnail of that minute.
// Every drawn piece carries data-start-us/data-end-us so a script can check its place.
import { el, clock, hhmm } from './fmt.js';
import { cameraUrl } from './api.js';

const MIN_SPAN_US = 2 * 60e6;
const MINUTE = 60e6;
const TICKS = [60e6, 5 * 60e6, 15 * 60e6, 30 * 60e6, 3600e6, 3 * 3600e6, 6 * 3600e6];

/**
 * A timeline in `host`. `opts.onPick(us)` runs on a click or Enter; `opts.camera` names
 * the camera for thumbnails. Call `set({dayStart, dayEnd, runs, events, now})` to draw.
 */
export class Timeline {
  constructor(host, opts) {
    this.opts = opts;
    this.day = null;
    this.view = null;
    this.cursor = null;
    this.selection = null;
    this.bar = el('div', {
      class: 'timeline', id: 'timeline', tabindex: 0, role: 'slider',
      'aria-label': 'Day timeline: arrows move a minute (Shift: 10), + and - zoom, Enter plays',
    });
    this.hover = el('div', { class: 'hover', id: 'timeline-hover', hidden: true });
    host.append(el('div', { class: 'timeline-wrap' }, this.bar, this.hover));
    this.bar.addEventListener('mousemove', (e) => this.hoverAt(e));
    this.bar.addEventListener('mouseleave', () => { this.hover.hidden = true; });
    this.bar.addEventListener('click', (e) => {
      const t = this.timeAt(e.clientX);
      this.setCursor(t);
      this.opts.onPick(t);
    });
    this.bar.addEventListener('keydown', (e) => this.key(e));
    this.bar.addEventListener('wheel', (e) => {
      e.preventDefault();
      this.zoom(e.deltaY < 0 ? 0.5 : 2, this.timeAt(e.clientX));
    }, { passive: false });
  }

  /** The time under client x. */
  timeAt(x) {
    const r = this.bar.getBoundingClientRect();
    const f = Math.min(Math.max((x - r.left) / r.width, 0), 1);
    return Math.round(this.view[0] + f * (this.view[1] - this.view[0]));
  }

  /** New data for a day; keeps the zoom when it is the same day. */
  set(data, focus) {
    const sameDay = this.day && this.day.dayStart === data.dayStart;
    this.day = data;
    if (!sameDay || !this.view) this.view = [data.dayStart, data.dayEnd];
    if (focus) this.zoomTo(focus.at, focus.span);
    if (this.cursor === null || this.cursor < data.dayStart || this.cursor >= data.dayEnd) {
      this.cursor = Math.min(data.now, data.dayEnd - 1);
    }
    this.draw();
  }

  /** Shows `span` µs around `at`, within the day. */
  zoomTo(at, span) {
    const [a, b] = [this.day.dayStart, this.day.dayEnd];
    span = Math.min(Math.max(span, MIN_SPAN_US), b - a);
    let from = Math.max(a, at - span / 2);
    from = Math.min(from, b - span);
    this.view = [from, from + span];
    this.cursor = at;
  }

  zoom(factor, around) {
    const span = (this.view[1] - this.view[0]) * factor;
    const f = (around - this.view[0]) / (this.view[1] - this.view[0]);
    const [a, b] = [this.day.dayStart, this.day.dayEnd];
    const s = Math.min(Math.max(span, MIN_SPAN_US), b - a);
    let from = Math.max(a, around - f * s);
    from = Math.min(from, b - s);
    this.view = [from, from + s];
    this.draw();
  }

  setCursor(t) {
    this.cursor = Math.min(Math.max(t, this.day.dayStart), this.day.dayEnd - 1);
    // Keep it in view.
    const span = this.view[1] - this.view[0];
    if (this.cursor < this.view[0]) this.view = [Math.max(this.day.dayStart, this.cursor - span / 10), 0];
    else if (this.cursor > this.view[1]) this.view = [Math.min(this.day.dayEnd, this.cursor + span / 10) - span, 0];
    this.view[1] = this.view[0] + span;
    this.draw();
  }

  setSelection(sel) {
    this.selection = sel;
    this.draw();
  }

  key(e) {
    if (!this.day) return;
    const step = e.shiftKey ? 10 * MINUTE : MINUTE;
    const span = this.view[1] - this.view[0];
    const moves = {
      ArrowLeft: () => this.setCursor(this.cursor - step),
      ArrowRight: () => this.setCursor(this.cursor + step),
      Home: () => this.setCursor(this.day.dayStart),
      End: () => this.setCursor(Math.min(this.day.now, this.day.dayEnd - 1)),
      PageUp: () => this.setCursor(this.cursor - span / 2),
      PageDown: () => this.setCursor(this.cursor + span / 2),
      '+': () => this.zoom(0.5, this.cursor),
      '=': () => this.zoom(0.5, this.cursor),
      '-': () => this.zoom(2, this.cursor),
      Enter: () => this.opts.onPick(this.cursor),
    };
    const f = moves[e.key];
    if (!f) return;
    e.preventDefault();
    f();
  }

  /** The recorded run holding `t`, if any. */
  runAt(t) {
    return this.day.runs.find(([s, e]) => s <= t && t < e);
  }

  hoverAt(e) {
    const t = this.timeAt(e.clientX);
    const r = this.bar.getBoundingClientRect();
    const minute = Math.floor(t / MINUTE) * MINUTE;
    const run = this.runAt(t);
    const label = el('div', { text: `${hhmm(minute)}${run ? '' : ' — not recorded'}` });
    const x = Math.min(Math.max(e.clientX - r.left - 86, 0), r.width - 172);
    this.hover.style.left = `${x}px`;
    this.hover.hidden = false;
    if (!run) {
      this.hover.replaceChildren(label);
      return;
    }
    // The first keyframe of the minute (or of the run, when it starts inside the minute).
    const at = Math.min(Math.max(minute + 1e6, run[0]), run[1]);
    const key = `${this.opts.camera}/${at}`;
    if (this.hover.dataset.key === key) return;
    this.hover.dataset.key = key;
    clearTimeout(this.hoverTimer);
    const img = el('img', { alt: `Picture at ${hhmm(minute)}` });
    img.addEventListener('error', () => img.replaceWith(el('div', { text: 'no picture' })));
    this.hover.replaceChildren(label, img);
    // Decoding is one at a time on the box: ask only once the pointer rests.
    this.hoverTimer = setTimeout(() => {
      img.src = cameraUrl(this.opts.camera, 'thumbnail.jpg', { at: at / 1e6, width: 160 });
    }, 150);
  }

  piece(cls, s, e, text) {
    const [a, b] = this.view;
    const l = Math.max(s, a), r = Math.min(e, b);
    if (r <= l && !(cls === 'gap' && r === l)) return null;
    const span = b - a;
    const p = el('div', {
      class: cls, 'data-start-us': s, 'data-end-us': e, title: text,
    });
    p.style.left = `${((l - a) / span) * 100}%`;
    p.style.width = `${((r - l) / span) * 100}%`;
    return p;
  }

  ticks() {
    const [a, b] = this.view;
    const step = TICKS.find((t) => (b - a) / t <= 8) || TICKS[TICKS.length - 1];
    const out = [];
    // Ticks on local clock marks: the zone offset of the view's start.
    const off = new Date(a / 1000).getTimezoneOffset() * -60e6;
    for (let t = Math.ceil((a + off) / step) * step - off; t < b; t += step) {
      const tick = el('div', { class: 'tick', text: hhmm(t), 'aria-hidden': 'true' });
      tick.style.left = `${((t - a) / (b - a)) * 100}%`;
      out.push(tick);
    }
    return out;
  }

  draw() {
    const d = this.day;
    if (!d) return;
    const parts = [];
    for (const [s, e] of d.runs) parts.push(this.piece('span', s, e, `recorded ${clock(s)}–${clock(e)}`));
    for (const [s, e] of gapsOf(d)) parts.push(this.piece('gap', s, e, `not recorded ${clock(s)}–${clock(e)}`));
    for (const ev of d.events) {
      const end = ev.end_us ?? d.now;
      const p = this.piece('event', ev.start_us, Math.max(end, ev.start_us + 1), `event ${ev.label} at ${clock(ev.start_us)}`);
      if (p) {
        p.append(el('span', { text: ev.label }));
        parts.push(p);
      }
    }
    if (this.selection) parts.push(this.piece('sel', this.selection[0], this.selection[1], 'chosen range'));
    parts.push(...this.ticks());
    const c = this.piece('cursor', this.cursor, this.cursor + 1, `cursor ${clock(this.cursor)}`);
    if (c) {
      c.style.width = '';
      parts.push(c);
    }
    this.bar.replaceChildren(...parts.filter(Boolean));
    this.bar.dataset.fromUs = this.view[0];
    this.bar.dataset.toUs = this.view[1];
    this.bar.setAttribute('aria-valuemin', 0);
    this.bar.setAttribute('aria-valuemax', 1440);
    this.bar.setAttribute('aria-valuenow', Math.floor((this.cursor - d.dayStart) / MINUTE));
    const run = this.runAt(this.cursor);
    this.bar.setAttribute('aria-valuetext', `${clock(this.cursor)}, ${run ? 'recorded' : 'not recorded'}`);
  }
}

/** A live run ends at the newest frame the index knows, seconds ago: not a gap yet. */
const TRAILING_SLACK_US = 5e6;

/** The parts of the day up to now that no run covers. */
export function gapsOf(d) {
  const end = Math.min(d.dayEnd, d.now);
  const out = [];
  let t = d.dayStart;
  for (const [s, e] of d.runs) {
    if (s > t) out.push([t, Math.min(s, end)]);
    t = Math.max(t, e);
  }
  if (end - t > TRAILING_SLACK_US) out.push([t, end]);
  return out.filter(([s, e]) => e > s);
}
