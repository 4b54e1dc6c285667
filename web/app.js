// The web UI's entry: hash routing between the pages, the login state, logout.
//   #/                  cameras (grid.js)
//   #/camera/ID?day=YYYY-MM-DD&at=SECONDS&span=SECONDS   one camera (camera.js)
//   #/status            the status document (status.js)
import { loadSession, logout } from './api.js';
import { showGrid } from './grid.js';
import { showCamera } from './camera.js';
import { showStatus } from './status.js';
import { el } from './fmt.js';

const view = document.getElementById('view');
let leave = null;

/** Parses the hash into a page name, its argument and its query. */
function parseHash() {
  const h = location.hash.replace(/^#\/?/, '');
  const [path, query] = h.split('?');
  const parts = path.split('/').map(decodeURIComponent);
  return { page: parts[0] || 'cameras', arg: parts[1], query: new URLSearchParams(query || '') };
}

async function route() {
  if (leave) {
    leave();
    leave = null;
  }
  const { page, arg, query } = parseHash();
  for (const [id, name] of [['nav-cameras', 'cameras'], ['nav-status', 'status']]) {
    const a = document.getElementById(id);
    if (name === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  view.replaceChildren();
  try {
    if (page === 'camera' && arg) leave = await showCamera(view, arg, query);
    else if (page === 'status') leave = await showStatus(view);
    else leave = await showGrid(view);
  } catch (e) {
    view.replaceChildren(el('h1', { text: 'Something went wrong' }), el('p', { class: 'error', text: e.message }));
  }
}

document.getElementById('logout').addEventListener('click', async () => {
  // The page's streams and timers end with the session.
  if (leave) {
    leave();
    leave = null;
  }
  view.replaceChildren();
  try {
    await logout();
  } finally {
    document.getElementById('logout').hidden = true;
    // The page asks for the token again (the next request gets 401).
    await loadSession().catch(() => {});
    route();
  }
});

window.addEventListener('hashchange', route);
loadSession()
  .then(route)
  .catch((e) => view.replaceChildren(el('p', { class: 'error', text: e.message })));
