-- Schema version 2 -> 3: events (docs/design/events.md). An event marks footage that
-- matters: a span of one camera's time plus the seconds before (pre) and after (post) it.
-- Chunks holding any of that footage carry `event = 1`, so the reaper and the archive can
-- ask "which chunks hold event footage" from the chunk table alone.
CREATE TABLE event (
  id INTEGER PRIMARY KEY,
  -- Camera id (the chunk table's).
  camera TEXT NOT NULL,
  -- What happened ('motion', 'doorbell', ...): 1-64 characters of A-Z a-z 0-9 - _ . :
  label TEXT NOT NULL,
  -- Who said so: 'api', 'cli', 'mqtt' or 'camera'.
  source TEXT NOT NULL,
  -- Start of the event, µs since the Unix epoch (UTC).
  start_us INTEGER NOT NULL,
  -- End, µs; NULL while the event is open (active).
  end_us INTEGER,
  -- Footage kept before the start and after the end, µs (at most 10 minutes each).
  pre_us INTEGER NOT NULL,
  post_us INTEGER NOT NULL,
  -- Free text from whoever made it; NULL when none (at most 256 bytes).
  note TEXT
);
-- Lists and the timeline: a camera's events, or all events, in time order.
CREATE INDEX event_camera_start ON event (camera, start_us);
CREATE INDEX event_start ON event (start_us);
-- Marking a new chunk: the camera's open events and those that ended recently.
CREATE INDEX event_camera_end ON event (camera, end_us);

-- 1 when the chunk holds footage of some event's span plus its pre and post capture.
ALTER TABLE chunk ADD COLUMN event INTEGER NOT NULL DEFAULT 0;
-- The reaper under pressure: a root's oldest sealed chunks of one class.
CREATE INDEX chunk_root_event_start ON chunk (root_id, event, start_us) WHERE state = 1;
