// Formatting shared by the pages: times in the browser's zone, sizes, durations.

/** The browser's IANA time zone (what the day timeline is drawn in). */
export const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

const two = (n) => String(n).padStart(2, '0');

/** `HH:MM:SS` local. */
export function clock(us) {
  const d = new Date(us / 1000);
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** `HH:MM` local. */
export function hhmm(us) {
  const d = new Date(us / 1000);
  return `${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** `YYYY-MM-DD` of a local date. */
export function isoDate(d) {
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
}

/** A readable local date and time of an RFC 3339 string or µs (empty for none). */
export function when(t) {
  if (t === null || t === undefined || t === '') return '—';
  const d = typeof t === 'number' ? new Date(t / 1000) : new Date(t);
  return d.toLocaleString();
}

/** 1.5 GB style sizes. */
export function bytes(n) {
  if (!Number.isFinite(n)) return '—';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(n < 10 && i ? 1 : 0)} ${units[i]}`;
}

/** 3 h 20 min style durations from seconds. */
export function duration(s) {
  if (!Number.isFinite(s)) return '—';
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** An element with attributes and children (text or nodes); `text` sets textContent. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role') e.setAttribute(k, v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}
