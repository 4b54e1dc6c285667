// The cameras page: a tile per camera (its latest picture, refreshed; its state, last
// error), then the storage (free space, oldest footage, what the reaper did).
import { getJson, cameraUrl, ApiError } from './api.js';
import { el, bytes, when } from './fmt.js';

const REFRESH_MS = 5000;
const PICTURE_MS = 10000;

/** The status document, or (a viewer limited to some cameras: 403) the camera list. */
async function load() {
  try {
    return await getJson('/api/v1/status');
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 403) throw e;
    return { ...(await getJson('/api/v1/cameras')), storage: null };
  }
}

/** The words for a camera's state: never colour alone. */
export function stateLine(c) {
  const age = c.last_frame_age_ms;
  const parts = [c.enabled === false ? 'disabled' : c.state];
  if (age !== null && age !== undefined) parts.push(`last frame ${(age / 1000).toFixed(1)} s ago`);
  return parts.join(' · ');
}

function tile(c) {
  const img = el('img', { alt: `Latest picture of ${c.id}`, loading: 'lazy' });
  const pic = el('div', { class: 'pic' }, img);
  img.addEventListener('error', () => pic.replaceChildren(el('span', { text: 'no picture yet' })));
  const state = el('div', { class: `state state-${c.enabled === false ? 'disabled' : c.state}`, text: stateLine(c) });
  const err = el('div', { class: 'error', text: c.last_error ? `Last error: ${c.last_error}` : '' });
  const t = el(
    'article',
    { class: 'tile', 'data-camera': c.id },
    el('a', { class: 'open', href: `#/camera/${encodeURIComponent(c.id)}` }, pic,
      el('div', { class: 'info' }, el('h2', { text: c.id }), state, err)),
  );
  const refreshPicture = () => {
    // The newest keyframe; `at` changes so the browser's cache does not answer.
    img.src = cameraUrl(c.id, 'thumbnail.jpg', { width: 320, at: Math.floor(Date.now() / 1000) });
  };
  return { node: t, state, err, refreshPicture };
}

function storageSection(doc) {
  const s = el('section', { class: 'storage', 'aria-labelledby': 'storage-h' }, el('h2', { id: 'storage-h', text: 'Storage' }));
  if (!doc.storage) {
    s.append(el('p', { class: 'muted', text: 'Storage is shown to tokens that see every camera.' }));
    return s;
  }
  const rows = doc.storage.map((r) =>
    el('tr', {},
      el('td', { text: r.path }),
      el('td', { text: `${bytes(r.free_bytes)} free of ${bytes(r.total_bytes)}` }),
      el('td', { text: when(r.oldest) }),
      el('td', { text: `${r.chunks_reaped} files, ${bytes(r.bytes_reaped)}` }),
      el('td', { text: [r.present ? '' : 'missing', r.writable ? 'writable' : 'NOT writable', r.last_error || '']
        .filter(Boolean).join(' · ') })));
  s.append(el('div', { class: 'scroll' }, el('table', {},
    el('thead', {}, el('tr', {}, ...['Root', 'Free', 'Oldest footage', 'Reaped', 'State'].map((h) => el('th', { text: h })))),
    el('tbody', {}, ...rows))));
  const r = doc.reaper;
  s.append(el('p', { id: 'reaper' }, `Reaper: ${r.runs} runs, last ${when(r.last_run)}; deleted ${r.chunks_deleted} files `
    + `(${bytes(r.bytes_deleted)})${r.last_error ? `; last error: ${r.last_error}` : ''}.`));
  for (const w of doc.warnings || []) s.append(el('p', { class: 'error', role: 'alert', text: `Warning: ${w}` }));
  return s;
}

/** Draws the page into `view`; returns what stops its timers. */
export async function showGrid(view) {
  let doc = await load();
  const h = el('h1', { text: 'Cameras' });
  const grid = el('div', { class: 'grid', id: 'camera-grid' });
  const tiles = new Map();
  for (const c of doc.cameras) {
    const t = tile(c);
    tiles.set(c.id, t);
    grid.append(t.node);
    t.refreshPicture();
  }
  if (!doc.cameras.length) grid.append(el('p', { class: 'muted', text: 'No cameras are configured.' }));
  let storage = storageSection(doc);
  view.append(h, grid, storage);
  const update = async () => {
    try {
      doc = await load();
    } catch (_) {
      return; // shown again at the next refresh; the page keeps what it had
    }
    for (const c of doc.cameras) {
      const t = tiles.get(c.id);
      if (!t) continue;
      t.state.textContent = stateLine(c);
      t.state.className = `state state-${c.enabled === false ? 'disabled' : c.state}`;
      t.err.textContent = c.last_error ? `Last error: ${c.last_error}` : '';
    }
    const s = storageSection(doc);
    storage.replaceWith(s);
    storage = s;
  };
  const timers = [setInterval(update, REFRESH_MS),
    setInterval(() => tiles.forEach((t) => t.refreshPicture()), PICTURE_MS)];
  return () => timers.forEach(clearInterval);
}
