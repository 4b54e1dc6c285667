-- Schema version 1 -> 2: the number of records (NAL units) in each chunk, so an export can
-- size its MP4 (each 17-byte record header becomes a 4-byte length) without reading the
-- chunk. -1 = unknown (rows from version 1); `edgenvr check --repair` fills it in.
ALTER TABLE chunk ADD COLUMN records INTEGER NOT NULL DEFAULT -1;
