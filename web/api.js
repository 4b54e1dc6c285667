// The API as the pages use it: same-origin fetches carrying the session cookie (never a
// token in a URL), a login asked once when the API answers 401, and the CSRF token sent
// with every state change (docs/design/webui.md, "Security").

let csrf = null;
let loginWaiters = null;

/** What GET /api/v1/session said: {role, via, csrf_token}, or null before it is known. */
export const session = { doc: null };

/** An error from the API, with its status and the server's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function errorOf(resp) {
  let msg = `${resp.status} ${resp.statusText}`;
  try {
    const doc = await resp.json();
    if (doc && doc.error) msg = doc.error;
  } catch (_) { /* not JSON: the status line says it */ }
  return new ApiError(resp.status, msg);
}

/** Shows the login dialog (once, however many requests wait) and resolves on success. */
function askLogin() {
  if (loginWaiters) return new Promise((ok) => loginWaiters.push(ok));
  loginWaiters = [];
  const dialog = document.getElementById('login-dialog');
  const form = document.getElementById('login-form');
  const input = document.getElementById('login-token');
  const error = document.getElementById('login-error');
  error.textContent = '';
  return new Promise((resolve) => {
    const submit = async (ev) => {
      ev.preventDefault();
      error.textContent = '';
      const resp = await fetch('/api/v1/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ token: input.value }),
      });
      if (!resp.ok) {
        error.textContent = (await errorOf(resp)).message;
        input.select();
        return;
      }
      const doc = await resp.json();
      csrf = doc.csrf_token;
      input.value = '';
      form.removeEventListener('submit', submit);
      dialog.close();
      await loadSession();
      const waiters = loginWaiters;
      loginWaiters = null;
      resolve();
      for (const w of waiters) w();
    };
    form.addEventListener('submit', submit);
    // Escape must not leave a page that can show nothing: the dialog stays.
    dialog.addEventListener('cancel', (ev) => ev.preventDefault());
    dialog.showModal();
    input.focus();
  });
}

/** fetch() that asks for a login on 401 and retries once logged in. */
export async function request(path, opts = {}) {
  for (;;) {
    const headers = new Headers(opts.headers || {});
    if (opts.method && opts.method !== 'GET' && opts.method !== 'HEAD' && csrf) headers.set('X-CSRF-Token', csrf);
    const resp = await fetch(path, { ...opts, headers, credentials: 'same-origin' });
    if (resp.status !== 401) return resp;
    await askLogin();
  }
}

/** GET a JSON document. */
export async function getJson(path) {
  const resp = await request(path);
  if (!resp.ok) throw await errorOf(resp);
  return resp.json();
}

/** POST a JSON body (with the CSRF token), returns the parsed answer. */
export async function postJson(path, body) {
  const resp = await request(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body || {}),
  });
  if (!resp.ok) throw await errorOf(resp);
  return resp.json();
}

/** Reads the caller's session (asking for a login first if the box needs one). */
export async function loadSession() {
  session.doc = await getJson('/api/v1/session');
  if (session.doc.csrf_token) csrf = session.doc.csrf_token;
  document.getElementById('logout').hidden = session.doc.via !== 'cookie';
  return session.doc;
}

/** Ends the session: the server forgets it and clears the cookie. */
export async function logout() {
  await postJson('/api/v1/logout');
  csrf = null;
  session.doc = null;
}

/** The URL of a camera's route (ids are encoded, never joined raw). */
export function cameraUrl(id, what, params) {
  const q = params ? `?${new URLSearchParams(params)}` : '';
  return `/api/v1/cameras/${encodeURIComponent(id)}/${what}${q}`;
}
