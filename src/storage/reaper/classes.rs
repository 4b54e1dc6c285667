//! Retention classes: continuous footage and event footage, each with its own age limit
//! per camera, and the order the reaper deletes them in under pressure. The rules, numbered
//! as in `docs/design/events.md`:
//!
//! 1. A root short of free space or over its byte budget loses continuous footage first,
//!    oldest first.
//! 2. With `events_reserve`, continuous footage may use only the root's room minus the
//!    reserve (room = what footage may take before the watermark or the budget): past it,
//!    continuous footage goes, oldest first, even with free space left.
//! 3. Event footage goes under pressure only when no continuous footage is left to delete
//!    on that root, oldest first, and every such deletion is logged as a warning.
//! 4. Each class ages out on its own limit (`max_age`, `events_max_age`), per camera;
//!    cameras no longer in the config keep the `[recording]` defaults.
//! 5. An open chunk is never deleted (every query asks for sealed rows), and every deletion
//!    is the reaper's three crash-safe steps.
//!
//! This file holds the limits; the reaper applies the rules (`Reaper::relieve`,
//! `Reaper::age_out`).

use crate::config::Config;
use std::time::Duration;

/// A camera's age limits: (continuous footage, event footage).
pub type Limits = (Option<Duration>, Option<Duration>);

/// Age limits (continuous, event) per camera.
#[derive(Clone, Debug, Default)]
pub struct Classes {
    /// For cameras not listed (removed from the config).
    default: Limits,
    /// Per configured camera.
    cameras: Vec<(String, Limits)>,
}

impl Classes {
    /// One age limit for all footage of every camera.
    pub fn uniform(max_age: Option<Duration>) -> Classes {
        Classes { default: (max_age, max_age), cameras: Vec::new() }
    }

    /// Each camera's `max_age` and `events_max_age`, with `[recording]`'s as the default.
    pub fn from_config(config: &Config) -> Classes {
        let limits = |r: &crate::config::Retention| (r.max_age, r.events_max_age);
        Classes {
            default: limits(&config.recording.retention),
            cameras: config.cameras.iter().map(|c| (c.id.clone(), limits(&c.retention))).collect(),
        }
    }

    /// `camera`'s limits (the defaults for a camera not listed).
    pub fn limits(&self, camera: &str) -> Limits {
        self.cameras.iter().find(|(id, _)| id == camera).map_or(self.default, |(_, l)| *l)
    }

    /// Whether any camera has an age limit.
    pub fn any_limit(&self) -> bool {
        let set = |l: &Limits| l.0.is_some() || l.1.is_some();
        set(&self.default) || self.cameras.iter().any(|(_, l)| set(l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FreeSpace, StorageConfig};
    use crate::index::events::NewEvent;
    use crate::index::{Index, NewChunk, Seal};
    use crate::media::h26x::Codec;
    use crate::storage::reaper::Reaper;
    use crate::storage::Storage;
    use std::path::Path;
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::Arc;

    const M: i64 = 60_000_000;
    const T0: i64 = 1_795_272_960_000_000;

    /// Chunks of camera "c" at minutes 0..n (1000 bytes each; the last one open), and an
    /// event over minutes 1 and 3 (no pre/post capture).
    fn fixture(dir: &Path, max_bytes: Option<u64>, reserve: Option<FreeSpace>) -> (Arc<Index>, Arc<Storage>, Vec<i64>) {
        let ix = Arc::new(Index::open_in_memory().unwrap());
        let cfg = StorageConfig {
            path: dir.to_owned(),
            min_free: FreeSpace::Bytes(0),
            max_bytes,
            events_reserve: reserve,
            require_mount: false,
        };
        let storage = Arc::new(Storage::open(&[cfg], &ix).unwrap());
        let root_id = storage.roots()[0].id;
        let ids = (0..7)
            .map(|m| {
                let ts = T0 + m * M;
                let rel = crate::chunk::path::rel_path("c", ts, 0);
                std::fs::create_dir_all(dir.join(&rel).parent().unwrap()).unwrap();
                std::fs::write(dir.join(&rel), vec![0u8; 1000]).unwrap();
                let n = NewChunk { camera: "c", root_id, rel_path: &rel, start_us: ts, codec: Codec::H264 };
                if m == 6 {
                    return ix.rotate(None, Some(&n)).unwrap().unwrap();
                }
                let s = Seal { start_us: ts, end_us: ts + 59_000_000, bytes: 1000, ..Default::default() };
                ix.insert_sealed(&n, &s).unwrap()
            })
            .collect();
        for m in [1, 3] {
            let e = NewEvent {
                camera: "c",
                label: "door",
                source: "api",
                start_us: T0 + m * M + 10_000_000,
                end_us: Some(T0 + m * M + 20_000_000),
                pre_us: 0,
                post_us: 0,
                note: None,
            };
            ix.insert_event(&e).unwrap();
        }
        (ix, storage, ids)
    }

    fn kept(ix: &Index, ids: &[i64]) -> Vec<bool> {
        ids.iter().map(|&id| ix.chunk(id).unwrap().is_some()).collect()
    }

    /// Rules 1 and 3: continuous footage goes first, oldest first; event footage only once
    /// nothing else is left, oldest first; never the open chunk.
    #[test]
    fn pressure_takes_continuous_footage_first_then_the_oldest_event() {
        let d = tempfile::tempdir().unwrap();
        // 7000 bytes indexed (the open chunk's row says 0), budget 3000: 3 continuous go.
        let (ix, storage, ids) = fixture(d.path(), Some(3000), None);
        let reaper = Reaper::new(ix.clone(), storage.clone(), None, crate::time::now_us);
        reaper.run_once().unwrap();
        assert_eq!(kept(&ix, &ids), [false, true, false, true, false, true, true]);
        assert_eq!(reaper.stats.event_chunks_deleted.load(Relaxed), 0);
        // Budget 1500: minute 5 (continuous) goes, then the older event chunk.
        let (ix, storage, ids) = fixture(tempfile::tempdir().unwrap().path(), Some(1500), None);
        let reaper = Reaper::new(ix.clone(), storage, None, crate::time::now_us);
        reaper.run_once().unwrap();
        assert_eq!(kept(&ix, &ids), [false, false, false, true, false, false, true]);
        assert_eq!(reaper.stats.event_chunks_deleted.load(Relaxed), 1);
    }

    /// Rule 2: with a reserve, continuous footage is held under room minus reserve even
    /// while the budget itself is not reached.
    #[test]
    fn the_events_reserve_keeps_continuous_footage_out_of_its_room() {
        let d = tempfile::tempdir().unwrap();
        // Budget 10000 (not reached: 6000 sealed), reserve 7500: continuous may use 2500.
        let (ix, storage, ids) = fixture(d.path(), Some(10_000), Some(FreeSpace::Bytes(7500)));
        Reaper::new(ix.clone(), storage, None, crate::time::now_us).run_once().unwrap();
        assert_eq!(kept(&ix, &ids), [false, true, false, true, true, true, true]);
    }

    /// Rule 4: each class ages out on its own limit, per camera.
    #[test]
    fn each_class_ages_out_on_its_own_limit() {
        let d = tempfile::tempdir().unwrap();
        let (ix, storage, ids) = fixture(d.path(), None, None);
        let classes = || Classes {
            default: (None, None),
            cameras: vec![("c".into(), (Some(Duration::from_secs(180)), Some(Duration::from_secs(3600))))],
        };
        // Now = minute 8: continuous footage ending before minute 5 goes; event footage stays.
        let reaper = Reaper::new(ix.clone(), storage.clone(), None, || T0 + 8 * M).with_classes(classes());
        reaper.run_once().unwrap();
        assert_eq!(kept(&ix, &ids), [false, true, false, true, false, true, true]);
        // Now = minute 63: the event chunk ending at 1:59 is past its hour, 3:59 is not.
        let reaper = Reaper::new(ix.clone(), storage, None, || T0 + 63 * M).with_classes(classes());
        reaper.run_once().unwrap();
        assert_eq!(kept(&ix, &ids), [false, false, false, true, false, false, true]);
        assert_eq!(reaper.stats.event_chunks_deleted.load(Relaxed), 1);
    }
}
