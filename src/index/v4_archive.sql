-- Schema version 3 -> 4: the off-box archive (docs/design/archive.md).
-- chunk.state gains 3 = archived only: the reaper removed the file, a copy is in an archive;
-- the row stays so timelines and exports still find the footage (fetched back).

-- One archive location (endpoint/bucket/prefix/box_id; never a secret) and its counters,
-- so `edgenvr archive status` reads them without the service.
CREATE TABLE archive_target (
  id INTEGER PRIMARY KEY,
  location TEXT NOT NULL UNIQUE,
  -- 1 when the target takes only event footage (`send = "events"`): what its backlog and
  -- its reaped_unsent count.
  events_only INTEGER NOT NULL DEFAULT 0,
  objects_sent INTEGER NOT NULL DEFAULT 0,
  bytes_sent INTEGER NOT NULL DEFAULT 0,
  -- Chunks the reaper deleted before they reached this target.
  reaped_unsent INTEGER NOT NULL DEFAULT 0,
  last_ok_us INTEGER,
  last_error TEXT,
  last_error_us INTEGER
);

-- One chunk copied to one target, verified (MD5 = the store's ETag). Its presence is the
-- upload progress: a chunk without a row here is in the backlog.
CREATE TABLE archive_object (
  target_id INTEGER NOT NULL REFERENCES archive_target (id),
  chunk_id INTEGER NOT NULL REFERENCES chunk (id) ON DELETE CASCADE,
  -- The object key, relative to the bucket.
  key TEXT NOT NULL,
  -- MD5 of the object, lower-case hex.
  md5 TEXT NOT NULL,
  -- UTC day of the chunk (YYYYMMDD): which manifest lists it.
  day TEXT NOT NULL,
  -- 1 once a manifest written to the target lists it.
  in_manifest INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (target_id, chunk_id),
  UNIQUE (target_id, key)
) WITHOUT ROWID;
CREATE INDEX archive_object_chunk ON archive_object (chunk_id);
CREATE INDEX archive_object_unlisted ON archive_object (target_id, in_manifest) WHERE in_manifest = 0;

-- Archived-only rows (state 3) can outnumber the rest many times over (every chunk the
-- reaper removed): the partial index of rare states leaves them out, so the range queries'
-- branch for open and unknown states never walks them (src/index/queries.rs), and a root's
-- oldest local footage is found without stepping over them (src/index/totals.rs).
DROP INDEX chunk_state;
CREATE INDEX chunk_state ON chunk (state) WHERE state != 1 AND state != 3;
CREATE INDEX chunk_root_local ON chunk (root_id, start_us) WHERE state != 3;
