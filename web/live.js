// The live player: live.mp4 (fragmented MP4, one fragment per frame) through Media Source
// Extensions; where MSE is missing (iPhone Safari) the video element plays live.m3u8
// itself. Its buffer is kept short (LIVE_KEEP_S) and it jumps ahead when it falls behind.
import { cameraUrl } from './api.js';

const LIVE_KEEP_S = 10;
const MAX_BEHIND_S = 3;
/** Bytes read but not yet appended, at most (a stalled decoder must not grow the page). */
const MAX_QUEUED = 8 << 20;

/**
 * Plays `camera` live in `video`. Returns {stop}; `onState(text)` hears what it does.
 * `video.dataset.firstFrameMs` is set when the first frame is shown (the UI's own
 * measure of time to first live frame).
 */
export function playLive(video, camera, onState) {
  const t0 = performance.now();
  const controller = new AbortController();
  let stopped = false;
  const firstFrame = () => {
    if (!video.dataset.firstFrameMs) video.dataset.firstFrameMs = String(Math.round(performance.now() - t0));
    onState('live');
  };
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(firstFrame);
  else video.addEventListener('playing', firstFrame, { once: true });
  video.muted = true;
  video.playsInline = true;
  if (!window.MediaSource) {
    video.src = cameraUrl(camera, 'live.m3u8');
    video.play().catch(() => onState('press play to start'));
    return { stop: () => { video.removeAttribute('src'); video.load(); } };
  }
  (async () => {
    const resp = await fetch(cameraUrl(camera, 'live.mp4'), { signal: controller.signal });
    const ctype = resp.headers.get('content-type') || '';
    if (!resp.ok) throw new Error(resp.status === 503 ? 'too many viewers right now' : `live view: ${resp.status}`);
    if (!MediaSource.isTypeSupported(ctype)) throw new Error(`this browser cannot play ${ctype} (try another one)`);
    const ms = new MediaSource();
    video.src = URL.createObjectURL(ms);
    await new Promise((r) => ms.addEventListener('sourceopen', r, { once: true }));
    const sb = ms.addSourceBuffer(ctype);
    const queue = [];
    let queued = 0;
    let started = false;
    const pump = () => {
      if (sb.updating || !queue.length || stopped) return;
      const next = queue.shift();
      queued -= next.byteLength;
      sb.appendBuffer(next);
    };
    sb.addEventListener('updateend', () => {
      if (stopped) return;
      const b = sb.buffered;
      if (b.length && !started) {
        started = true;
        video.currentTime = b.start(0);
        video.play().catch(() => onState('press play to start'));
      }
      if (b.length && video.currentTime - b.start(0) > LIVE_KEEP_S) {
        sb.remove(b.start(0), video.currentTime - LIVE_KEEP_S / 2);
        return;
      }
      if (b.length && b.end(b.length - 1) - video.currentTime > MAX_BEHIND_S) {
        video.currentTime = b.end(b.length - 1) - 0.5;
      }
      pump();
    });
    const reader = resp.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done || stopped) break;
      if (queued + value.byteLength > MAX_QUEUED) throw new Error('the player fell behind; reload to resume');
      queue.push(value);
      queued += value.byteLength;
      pump();
    }
    if (!stopped) onState('the live stream ended; reload to resume');
  })().catch((e) => {
    if (!stopped) onState(e.message || String(e));
  });
  return {
    stop: () => {
      stopped = true;
      controller.abort();
      video.removeAttribute('src');
      video.load();
    },
  };
}
