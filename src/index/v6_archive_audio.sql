-- Schema version 5 -> 6: chunks' audio siblings in the archive (docs/design/archive.md,
-- docs/design/audio.md). A chunk's sibling is its own object (the chunk's key with `.audio`
-- for `.chunk`), verified like the chunk (the store's ETag = the MD5 of what was sent)
-- before the chunk counts as archived.

-- The sibling's copy: its length and MD5 (lower-case hex), for fetch-back and manifests;
-- NULL when the chunk was archived without one (none recorded, or it vanished or was
-- damaged: see archive_target.audio_skipped).
ALTER TABLE archive_object ADD COLUMN audio_bytes INTEGER;
ALTER TABLE archive_object ADD COLUMN audio_md5 TEXT;

-- Chunks archived without their sibling because it vanished or was damaged.
ALTER TABLE archive_target ADD COLUMN audio_skipped INTEGER NOT NULL DEFAULT 0;
