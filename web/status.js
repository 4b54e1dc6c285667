// The status page: the whole status document, readable (tables and sentences), refreshed.
import { getJson } from './api.js';
import { el, bytes, when, duration } from './fmt.js';
import { stateLine } from './grid.js';

function table(head, rows) {
  return el('div', { class: 'scroll' }, el('table', {},
    el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((v) => el('td', { text: String(v) })))))));
}

function render(doc) {
  const out = [el('h1', { text: 'Status' }),
    el('p', { text: `edgenvr ${doc.version}, up ${duration(doc.uptime_s)}; box time ${when(doc.now)}.` })];
  for (const w of doc.warnings) out.push(el('p', { class: 'error', role: 'alert', text: `Warning: ${w}` }));
  out.push(el('h2', { text: 'Cameras' }), table(
    ['Camera', 'Source', 'State', 'Since', 'Bitrate', 'Frames', 'Dropped', 'Gaps', 'Connects', 'Encoder', 'Live viewers', 'Last error'],
    doc.cameras.map((c) => [c.id, c.source, stateLine(c), when(c.since), `${Math.round(c.bitrate_bps / 1000)} kbit/s`,
      c.frames, c.frames_dropped, c.gaps, c.connects, c.encoder || '—', c.live ? c.live.viewers : '—',
      c.last_error || '—'])));
  out.push(el('h2', { text: 'Storage' }), table(
    ['Root', 'Present', 'Writable', 'Free', 'Kept free', 'Used by footage', 'Oldest', 'Reaped', 'Failures', 'Last error'],
    doc.storage.map((r) => [r.path, r.present ? 'yes' : 'NO', r.writable ? 'yes' : 'NO',
      `${bytes(r.free_bytes)} of ${bytes(r.total_bytes)}`, bytes(r.min_free_bytes), bytes(r.used_bytes), when(r.oldest),
      `${r.chunks_reaped} files, ${bytes(r.bytes_reaped)}`, r.failures, r.last_error || '—'])));
  const r = doc.reaper;
  out.push(el('h2', { text: 'Reaper' }), table(['Runs', 'Last run', 'Files deleted', 'Bytes deleted', 'Last error'],
    [[r.runs, when(r.last_run), r.chunks_deleted, bytes(r.bytes_deleted), r.last_error || '—']]));
  const raw = el('details', {}, el('summary', { text: 'The document as JSON' }),
    el('pre', { text: JSON.stringify(doc, null, 2) }));
  out.push(raw);
  return out;
}

/** Draws the page; returns what stops its refresh. */
export async function showStatus(view) {
  view.replaceChildren(...render(await getJson('/api/v1/status')));
  const t = setInterval(async () => {
    try {
      const doc = await getJson('/api/v1/status');
      const open = view.querySelector('details')?.open;
      view.replaceChildren(...render(doc));
      if (open) view.querySelector('details').open = true;
    } catch (_) { /* kept as it was until the next refresh */ }
  }, 5000);
  return () => clearInterval(t);
}
