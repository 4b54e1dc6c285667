-- The edgenvr index, schema version 1. See docs/design/index.md.
-- The chunk files are the source of truth for video; this index is how the service finds
-- them quickly. `edgenvr check --repair` can rebuild it from the files alone.

-- A storage root named in the config. Rows are never deleted, so ids stay stable if a
-- root is removed from the config and added back.
CREATE TABLE storage_root (
  id INTEGER PRIMARY KEY,
  -- Absolute path of the root directory, as configured.
  path TEXT NOT NULL UNIQUE
);

-- One row per chunk file.
CREATE TABLE chunk (
  id INTEGER PRIMARY KEY,
  -- Camera id; also the first component of rel_path.
  camera TEXT NOT NULL,
  -- The root the file is on.
  root_id INTEGER NOT NULL REFERENCES storage_root (id),
  -- Path of the file relative to the root: {camera}/YYYYMMDD/{camera}.YYYYMMDD.HHMM[.n].chunk
  rel_path TEXT NOT NULL,
  -- Timestamp of the first record, µs since the Unix epoch (UTC).
  start_us INTEGER NOT NULL,
  -- Timestamp of the last frame, µs. Equal to start_us while the chunk is open.
  end_us INTEGER NOT NULL,
  -- Length of the file in bytes (valid records only). 0 while open.
  bytes INTEGER NOT NULL,
  -- Number of frames. 0 while open.
  frames INTEGER NOT NULL,
  -- 'h264' or 'h265'.
  codec TEXT NOT NULL,
  -- 0 = open (being written; recovered at startup), 1 = sealed, 2 = deleting (the reaper
  -- committed to removing it; startup finishes the job).
  state INTEGER NOT NULL,
  -- Keyframe seek table: LEB128 varint pairs (ts - previous ts, offset - previous offset),
  -- starting from (start_us, 0). Offsets point at the parameter sets before each IDR.
  keyframes BLOB NOT NULL,
  UNIQUE (root_id, rel_path)
);

-- Timeline and export queries: a camera's chunks in time order.
CREATE INDEX chunk_camera_start ON chunk (camera, start_us);
-- The reaper: a root's oldest chunks.
CREATE INDEX chunk_root_start ON chunk (root_id, start_us);
-- Recovery: open and deleting rows.
CREATE INDEX chunk_state ON chunk (state) WHERE state != 1;
