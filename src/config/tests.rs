//! Tests of the configuration file: parsing, defaults and the errors naming their key.

use super::*;

#[test]
fn embedded_default_parses() {
    let c = Config::parse(EMBEDDED_DEFAULT).unwrap();
    assert_eq!(c.cameras.len(), 1);
    assert_eq!(c.cameras[0].id, "demo");
    assert!(matches!(c.cameras[0].source, SourceConfig::Testsrc(ref t) if t.width == 640 && t.fps == 15));
    assert!(c.storage[0].path.ends_with("edgenvr-data"));
    assert!(c.storage[0].path.is_absolute());
    assert_eq!(c.index_path, c.storage[0].path.join("index.db"));
    assert_eq!(c.recording.sync_interval, Duration::from_secs(2));
}

#[test]
fn issue_example_parses() {
    let c = Config::parse(
        r#"
        [server]
        listen = "127.0.0.1:8080"
        [recording]
        sync_interval = "2s"
        max_age = "30d"
        [[storage]]
        path = "/media/usb0/edgenvr"
        min_free = "2GiB"
        max_bytes = "500GiB"
        [[camera]]
        id = "door"
        url = "rtsp://user:pass@192.168.1.20/stream1"
        [[camera]]
        id = "demo"
        source = "testsrc"
        width = 640
        height = 480
        fps = 15
        "#,
    )
    .unwrap();
    assert_eq!(c.recording.max_age, Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(c.storage[0].min_free, FreeSpace::Bytes(2 << 30));
    assert_eq!(c.storage[0].max_bytes, Some(500 << 30));
    assert!(matches!(c.cameras[0].source, SourceConfig::Rtsp(ref r) if r.transport == Transport::Tcp));
}

#[test]
fn rtsp_transport_is_parsed_into_its_enum() {
    let c = Config::parse(
        "[[storage]]\npath = \"/x\"\n[[camera]]\nid = \"a\"\nurl = \"rtsp://h/s\"\ntransport = \"udp\"\n",
    )
    .unwrap();
    assert!(matches!(c.cameras[0].source, SourceConfig::Rtsp(ref r) if r.transport == Transport::Udp));
}

#[test]
fn v4l2_camera_keys_parse_with_defaults_left_to_negotiation() {
    let c = Config::parse(
        "[[storage]]\npath = \"/x\"\n[[camera]]\nid = \"usb\"\ndevice = \"/dev/v4l/by-id/usb-cam-video-index0\"\n\
         [[camera]]\nid = \"pi\"\ndevice = \"/dev/video0\"\nwidth = 1280\nheight = 720\nfps = 30\n\
         format = \"YUYV\"\nencoder = \"hardware\"\nbitrate = 2000000\nkeyframe_interval = 60\n",
    )
    .unwrap();
    let SourceConfig::V4l2(a) = &c.cameras[0].source else { panic!("not v4l2") };
    assert_eq!((a.width, a.fps, a.encoder, a.format), (None, None, EncoderChoice::Auto, None));
    let SourceConfig::V4l2(b) = &c.cameras[1].source else { panic!("not v4l2") };
    assert_eq!((b.width, b.height, b.fps), (Some(1280), Some(720), Some(30)));
    assert_eq!((b.format, b.encoder), (Some(crate::kernel::v4l2::Fourcc::YUYV), EncoderChoice::Hardware));
    assert_eq!((b.bitrate, b.keyframe_interval), (Some(2_000_000), Some(60)));
}

#[test]
fn errors_name_the_key_and_reason() {
    let base = "[[storage]]\npath = \"/x\"\n";
    let cases: &[(&str, &str)] = &[
        ("[recording]\nsync_interval = \"2x\"\n", "recording.sync_interval"),
        ("[recording]\nmax_age = \"1s\"\n", "recording.max_age"),
        ("[server]\nlisten = \"localhost\"\n", "server.listen"),
        ("[server]\nmax_viewers = 65\n", "server.max_viewers"),
        ("[[storage]]\npath = \"/y\"\nmin_free = \"lots\"\n", "storage[1].min_free"),
        ("[[storage]]\npath = \"/y\"\nmin_free = \"150%\"\n", "storage[1].min_free"),
        ("[[storage]]\npath = \"/x\"\n", "storage[1].path"),
        ("[[camera]]\nid = \"../etc\"\nsource = \"testsrc\"\n", "camera[0].id"),
        ("[[camera]]\nid = \"a\"\nsource = \"testsrc\"\nwidth = 641\n", "camera[0].width"),
        ("[[camera]]\nid = \"a\"\n", "camera[0].source"),
        (
            "[[camera]]\nid = \"a\"\nsource = \"testsrc\"\n[[camera]]\nid = \"a\"\nsource = \"testsrc\"\n",
            "camera[1].id",
        ),
        ("[[camera]]\nid = \"a\"\nurl = \"http://x\"\n", "camera[0].url"),
        ("[[camera]]\nid = \"a\"\nurl = \"rtsp://x\"\ntransport = \"UDP\"\n", "camera[0].transport"),
        ("[recording]\nsync_intervl = \"2s\"\n", "sync_intervl"),
        ("[[camera]]\nid = \"a\"\ndevice = \"video0\"\n", "camera[0].device"),
        ("[[camera]]\nid = \"a\"\ndevice = \"/dev/video0\"\nwidth = 640\n", "camera[0].width"),
        ("[[camera]]\nid = \"a\"\ndevice = \"/dev/video0\"\nformat = \"YUV\"\n", "camera[0].format"),
        ("[[camera]]\nid = \"a\"\ndevice = \"/dev/video0\"\nencoder = \"gpu\"\n", "camera[0].encoder"),
        ("[[camera]]\nid = \"a\"\ndevice = \"/dev/video0\"\nbitrate = 5\n", "camera[0].bitrate"),
        ("[[camera]]\nid = \"a\"\ndevice = \"/dev/video0\"\nspeed = 2.0\n", "camera[0].speed"),
        ("[[camera]]\nid = \"a\"\nsource = \"testsrc\"\nencoder = \"software\"\n", "camera[0].encoder"),
    ];
    for (extra, key) in cases {
        let text = format!("{base}{extra}");
        let e = Config::parse(&text).expect_err(extra);
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.to_string().contains(key), "{extra:?}: {e}");
    }
    let e = Config::parse("").unwrap_err();
    assert!(e.to_string().contains("storage"), "{e}");
}

#[test]
fn units() {
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
    assert!(parse_duration("0s").is_err());
    assert!(parse_duration("-1s").is_err());
    assert!(parse_duration("s").is_err());
    assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
    assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
    assert_eq!(parse_size("42").unwrap(), 42);
    assert!(parse_size("1PB").is_err());
    assert_eq!(parse_free_space("10%").unwrap(), FreeSpace::Percent(10.0));
    assert_eq!(FreeSpace::Percent(10.0).bytes_for(1000), 100);
}

proptest::proptest! {
    #![proptest_config(crate::testutil::fuzz_config())]

    /// Arbitrary-bytes target of the config's value parsers and of the whole file
    /// parse: an error, never a panic; a size or duration that parses is in range.
    #[test]
    fn fuzz_values_and_config(s in "\\PC{0,24}", unit in "(|ms|s|m|h|d|w|B|KB|MiB|GiB|TiB|%)", n in proptest::num::f64::ANY) {
        let with_unit = format!("{n}{unit}");
        for t in [s.as_str(), with_unit.as_str()] {
            if let Ok(d) = parse_duration(t) {
                proptest::prop_assert!(d > Duration::ZERO && d <= Duration::from_secs(100 * 365 * 86_400));
            }
            if let Ok(v) = parse_size(t) {
                proptest::prop_assert!(v <= u64::MAX / 2);
            }
            let _ = parse_free_space(t);
        }
        let toml = format!("[[storage]]\npath = \"/x\"\nmax_bytes = {s:?}\n[[camera]]\nid = {s:?}\nsource = \"testsrc\"\n");
        let _ = Config::parse(&toml);
        let _ = Config::parse(&s);
    }
}
