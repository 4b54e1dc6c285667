// One camera: the live player, the day timeline (recorded spans, gaps, events; hover for
// thumbnails; click or Enter plays from that moment), previous/next day, a range to
// download as MP4, the day's events and gaps as text.
import { getJson, cameraUrl } from './api.js';
import { el, clock, isoDate, zone, duration } from './fmt.js';
import { Timeline, gapsOf } from './timeline.js';
import { playLive } from './live.js';

/** A recorded window played at once (the next one follows when it ends). */
const WINDOW_US = 10 * 60e6;
const REFRESH_MS = 10000;

/** The local midnight starting the day of `date` (YYYY-MM-DD) and the next one, µs. */
function localDay(date) {
  const a = new Date(`${date}T00:00:00`);
  const b = new Date(a);
  b.setDate(b.getDate() + 1);
  return [a.getTime() * 1000, b.getTime() * 1000];
}

/** The day's bounds from the box (zone rules of the browser's zone), else the browser's. */
async function dayBounds(camera, date) {
  try {
    const doc = await getJson(cameraUrl(camera, 'days', { from: date, to: date, tz: zone }));
    const d = doc.days[0];
    return { dayStart: d.start_us, dayEnd: d.end_us, recorded_s: d.recorded_s };
  } catch (_) {
    // The box may not know this zone's name: the browser's own midnight is as good.
    const [dayStart, dayEnd] = localDay(date);
    return { dayStart, dayEnd, recorded_s: null };
  }
}

async function loadDay(camera, date) {
  const b = await dayBounds(camera, date);
  const range = { from: b.dayStart / 1e6, to: b.dayEnd / 1e6 };
  const [rec, ev] = await Promise.all([
    getJson(cameraUrl(camera, 'recordings', { ...range, limit: 10000 })),
    getJson(`/api/v1/events?${new URLSearchParams({ camera, ...range, limit: 1000 })}`),
  ]);
  const runs = rec.recordings.map((r) => [r.start_us, r.end_us]);
  return { ...b, runs, events: ev.events, now: Date.now() * 1000 };
}

function layout(camera) {
  const video = el('video', { id: 'player', controls: true, muted: true, playsInline: true, autoplay: true });
  const mode = el('span', { class: 'badge', id: 'player-mode', text: 'Live' });
  const stateText = el('span', { id: 'player-state', role: 'status', text: 'connecting…' });
  const toLive = el('button', { type: 'button', id: 'to-live', text: 'Back to live', hidden: true });
  const dateIn = el('input', { type: 'date', id: 'day', 'aria-label': 'Day' });
  const prev = el('button', { type: 'button', id: 'prev-day', text: '◀ Previous day' });
  const next = el('button', { type: 'button', id: 'next-day', text: 'Next day ▶' });
  const zin = el('button', { type: 'button', id: 'zoom-in', text: 'Zoom in (+)' });
  const zout = el('button', { type: 'button', id: 'zoom-out', text: 'Zoom out (−)' });
  const summary = el('p', { class: 'muted', id: 'day-summary' });
  const tlHost = el('div');
  const legend = el('div', { class: 'legend', 'aria-hidden': 'true' },
    el('span', {}, el('i', { class: 'l-rec' }), 'recorded'),
    el('span', {}, el('i', { class: 'l-gap' }), 'not recorded (hatched)'),
    el('span', {}, el('i', { class: 'l-event' }), 'event (labelled)'));
  const fromIn = el('input', { type: 'time', step: 1, id: 'range-from' });
  const toIn = el('input', { type: 'time', step: 1, id: 'range-to' });
  const markFrom = el('button', { type: 'button', id: 'mark-from', text: 'Start at cursor' });
  const markTo = el('button', { type: 'button', id: 'mark-to', text: 'End at cursor' });
  const download = el('a', { class: 'button', id: 'download', text: 'Download MP4', download: '' });
  const rangeMsg = el('p', { class: 'muted', id: 'range-msg', role: 'status' });
  const events = el('ul', { class: 'plain', id: 'event-list' });
  const gaps = el('ul', { class: 'plain', id: 'gap-list' });
  const page = el('div', { class: 'camera-page' },
    el('section', { 'aria-label': 'Player and timeline' },
      el('div', { class: 'player' }, video),
      el('div', { class: 'player-caption' }, mode, stateText, toLive),
      el('div', { class: 'daynav' }, prev, dateIn, next, zin, zout, el('span', { class: 'muted', text: `Times in ${zone}` })),
      summary, tlHost, legend),
    el('aside', {},
      el('h2', { text: 'Download a range' }),
      el('div', { class: 'range' }, el('label', {}, 'From', fromIn), el('label', {}, 'To', toIn), markFrom, markTo, download),
      rangeMsg,
      el('h2', { text: 'Events' }), events,
      el('h2', { text: 'Not recorded' }), gaps));
  return { page, video, mode, stateText, toLive, dateIn, prev, next, zin, zout, summary, tlHost, fromIn, toIn, markFrom,
    markTo, download, rangeMsg, events, gaps };
}

/** `HH:MM:SS` of `us` for a time input. */
function timeValue(us) {
  return clock(us);
}

/** Draws the page for `camera`; returns what stops it. */
export async function showCamera(view, camera, query) {
  const ui = layout(camera);
  view.append(el('h1', { text: camera }), ui.page);
  let date = query.get('day') || isoDate(new Date());
  let live = null;
  let playingFrom = null;
  const setState = (t) => { ui.stateText.textContent = t; };

  const goLive = () => {
    playingFrom = null;
    ui.video.removeAttribute('data-from-us');
    ui.video.dataset.mode = 'live';
    ui.mode.textContent = 'Live';
    ui.toLive.hidden = true;
    live = playLive(ui.video, camera, setState);
  };
  /** Plays recorded footage from `us` (a window of WINDOW_US, the export's Range reads). */
  const playFrom = (us) => {
    if (live) live.stop();
    live = null;
    const to = Math.min(us + WINDOW_US, Date.now() * 1000);
    if (to <= us) return goLive();
    playingFrom = us;
    ui.video.dataset.mode = 'recorded';
    ui.video.dataset.fromUs = String(us);
    ui.mode.textContent = `Recorded from ${clock(us)}`;
    ui.toLive.hidden = false;
    setState('loading…');
    ui.video.src = cameraUrl(camera, 'export.mp4', { from: us / 1e6, to: to / 1e6 });
    ui.video.play().catch(() => {});
  };
  ui.video.addEventListener('timeupdate', () => {
    if (playingFrom === null) return;
    const wall = playingFrom + ui.video.currentTime * 1e6;
    ui.video.dataset.wallUs = String(Math.round(wall));
    setState(`${clock(wall)}${ui.video.paused ? ' (paused)' : ''}`);
  });
  ui.video.addEventListener('ended', () => {
    if (playingFrom !== null) playFrom(playingFrom + WINDOW_US);
  });
  ui.video.addEventListener('error', () => {
    if (playingFrom !== null) setState('nothing recorded here to play');
  });
  ui.toLive.addEventListener('click', () => {
    if (live) live.stop();
    goLive();
  });

  /** A pick in a gap plays from the next recording that day (or live, if none follows). */
  const pick = (us) => {
    const runs = timeline.day ? timeline.day.runs : [];
    if (runs.some(([s, e]) => s <= us && us < e)) return playFrom(Math.floor(us / 1e6) * 1e6);
    const next = runs.find(([s]) => s > us);
    if (next) return playFrom(next[0]);
    if (live) live.stop();
    return goLive();
  };
  const timeline = new Timeline(ui.tlHost, { camera, onPick: pick });
  const rangeOf = () => {
    const [a, b] = [ui.fromIn.value, ui.toIn.value].map((v) => v && new Date(`${date}T${v.length === 5 ? `${v}:00` : v}`).getTime() * 1000);
    return a && b ? [a, b] : null;
  };
  const updateRange = () => {
    const r = rangeOf();
    if (!r || r[1] <= r[0]) {
      ui.download.removeAttribute('href');
      ui.download.setAttribute('aria-disabled', 'true');
      ui.rangeMsg.textContent = r ? 'The end must come after the start.' : 'Choose a start and an end (or use the cursor).';
      timeline.setSelection(null);
      return;
    }
    ui.download.href = cameraUrl(camera, 'export.mp4', { from: r[0] / 1e6, to: r[1] / 1e6 });
    ui.download.removeAttribute('aria-disabled');
    ui.download.dataset.fromUs = r[0];
    ui.download.dataset.toUs = r[1];
    ui.rangeMsg.textContent = `${duration((r[1] - r[0]) / 1e6)} from ${clock(r[0])}.`;
    timeline.setSelection(r);
  };
  ui.fromIn.addEventListener('input', updateRange);
  ui.toIn.addEventListener('input', updateRange);
  ui.markFrom.addEventListener('click', () => { ui.fromIn.value = timeValue(timeline.cursor); updateRange(); });
  ui.markTo.addEventListener('click', () => { ui.toIn.value = timeValue(timeline.cursor); updateRange(); });

  const render = (d) => {
    ui.summary.textContent = d.recorded_s === null ? '' : `${duration(d.recorded_s)} recorded on ${date}.`;
    ui.events.replaceChildren(...(d.events.length ? d.events.map((e) => el('li', {},
      el('a', { href: '#', 'data-start-us': e.start_us, text: `${clock(e.start_us)} ${e.label}${e.active ? ' (ongoing)' : ''}` })))
      : [el('li', { class: 'muted', text: 'none' })]));
    const gaps = gapsOf(d);
    ui.gaps.replaceChildren(...(gaps.length ? gaps.map(([s, e]) => el('li', { 'data-start-us': s, 'data-end-us': e,
      text: `${clock(s)}–${clock(e)} (${duration((e - s) / 1e6)})` })) : [el('li', { class: 'muted', text: 'none' })]));
  };
  ui.events.addEventListener('click', (e) => {
    const a = e.target.closest('a[data-start-us]');
    if (!a) return;
    e.preventDefault();
    playFrom(Number(a.dataset.startUs));
  });

  let focus = null;
  if (query.get('at')) {
    focus = { at: Number(query.get('at')) * 1e6, span: Number(query.get('span') || 3600) * 1e6 };
  }
  const load = async () => {
    ui.dateIn.value = date;
    const today = isoDate(new Date());
    ui.next.disabled = date >= today;
    const d = await loadDay(camera, date);
    timeline.set(d, focus);
    focus = null;
    render(d);
    updateRange();
  };
  const changeDay = async (delta, value) => {
    const d = value ? new Date(`${value}T12:00:00`) : new Date(`${date}T12:00:00`);
    d.setDate(d.getDate() + delta);
    date = isoDate(d);
    history.replaceState(null, '', `#/camera/${encodeURIComponent(camera)}?day=${date}`);
    await load();
  };
  ui.prev.addEventListener('click', () => changeDay(-1));
  ui.next.addEventListener('click', () => changeDay(1));
  ui.dateIn.addEventListener('change', () => ui.dateIn.value && changeDay(0, ui.dateIn.value));
  ui.zin.addEventListener('click', () => timeline.zoom(0.5, timeline.cursor));
  ui.zout.addEventListener('click', () => timeline.zoom(2, timeline.cursor));

  await load();
  goLive();
  const t = setInterval(() => load().catch(() => {}), REFRESH_MS);
  return () => {
    clearInterval(t);
    if (live) live.stop();
    ui.video.removeAttribute('src');
    ui.video.load();
  };
}


