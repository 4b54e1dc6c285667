//! Every board profile loads with the real config parser and keeps its promises: a
//! USB root that requires a mount first, an SD fallback with a byte budget, the index and
//! the API token file on the state partition.

use edgenvr::config::Config;
use std::path::Path;

#[test]
fn every_board_profile_loads() {
    let boards = Path::new(env!("CARGO_MANIFEST_DIR")).join("board");
    let mut seen = Vec::new();
    for e in std::fs::read_dir(&boards).unwrap() {
        let dir = e.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let file = dir.join("edgenvr.toml");
        let c = Config::load(Some(&file)).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(c.index_path, Path::new("/var/lib/edgenvr/index.db"), "{}", file.display());
        assert!(c.storage[0].require_mount && c.storage[0].path.starts_with("/media/usb0"), "{}", file.display());
        assert!(c.storage[1].max_bytes.is_some(), "{}: the SD fallback has a budget", file.display());
        assert_eq!(c.server.listen.port(), 8080);
        // Listening on the LAN, so never without a token: made on first boot on the data
        // partition (the state directory, which the image mounts there).
        assert_eq!(c.server.token_file.as_deref(), Some(Path::new("/var/lib/edgenvr/api-token")), "{}", file.display());
        seen.push(dir.file_name().unwrap().to_string_lossy().into_owned());
    }
    seen.sort();
    assert_eq!(seen, ["rpi-zero2w", "rpi3", "rpi4", "rpi5"]);
}
