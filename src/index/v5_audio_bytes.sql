-- Schema version 4 -> 5: a chunk's audio sibling (docs/design/audio.md) is counted where
-- its bytes matter: roots' totals, byte budgets, freed space, event reserves. The sibling's
-- length, set when the chunk is sealed (writer, recovery, repair, the background indexer).
-- `bytes` stays the chunk file's own length (what exports and checks read). Older rows had
-- no siblings (audio came with this version): 0.
ALTER TABLE chunk ADD COLUMN audio_bytes INTEGER NOT NULL DEFAULT 0;
