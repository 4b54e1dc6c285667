//! Parsing tests for the PullPoint client. The replies follow the message layout of the ONVIF
//! Core Specification (event examples, 9.2) and what Axis and Hikvision cameras send; the
//! calls themselves are tested against a real device server in `tests/onvif.rs`.

use super::*;
use crate::onvif::testdata::mutated;

const CREATED: &str = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa5="http://www.w3.org/2005/08/addressing" xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:dom0="http://www.axis.com/2009/event"><env:Body><tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference><wsa5:Address>http://10.0.0.7/onvif/services</wsa5:Address><wsa5:ReferenceParameters><dom0:SubscriptionId>4</dom0:SubscriptionId></wsa5:ReferenceParameters></tev:SubscriptionReference><wsnt:CurrentTime>2026-11-21T14:56:03Z</wsnt:CurrentTime><wsnt:TerminationTime>2026-11-21T14:57:03Z</wsnt:TerminationTime></tev:CreatePullPointSubscriptionResponse></env:Body></env:Envelope>"#;

const PULLED: &str = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tns1="http://www.onvif.org/ver10/topics"><env:Body><tev:PullMessagesResponse><tev:CurrentTime>2026-11-21T14:56:10Z</tev:CurrentTime><tev:TerminationTime>2026-11-21T14:57:10Z</tev:TerminationTime><wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic><wsnt:Message><tt:Message UtcTime="2026-11-21T14:56:09.250Z" PropertyOperation="Changed"><tt:Source><tt:SimpleItem Name="VideoSourceConfigurationToken" Value="VideoSourceToken"/><tt:SimpleItem Name="VideoAnalyticsConfigurationToken" Value="VideoAnalyticsToken"/><tt:SimpleItem Name="Rule" Value="MyMotionDetectorRule"/></tt:Source><tt:Data><tt:SimpleItem Name="IsMotion" Value="true"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage><wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:VideoSource/MotionAlarm</wsnt:Topic><wsnt:Message><tt:Message UtcTime="2026-11-21T14:56:09" PropertyOperation="Changed"><tt:Source><tt:SimpleItem Name="Source" Value="VideoSource_1"/></tt:Source><tt:Data><tt:SimpleItem Name="State" Value="false"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage><wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:Device/tnsaxis:IO/Port</wsnt:Topic><wsnt:Message><tt:Message UtcTime="2026-11-21T14:56:09Z" PropertyOperation="Initialized"><tt:Source><tt:SimpleItem Name="port" Value="1"/></tt:Source><tt:Data><tt:SimpleItem Name="state" Value="0"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage></tev:PullMessagesResponse></env:Body></env:Envelope>"#;

const RENEWED: &str = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"><s:Body><wsnt:RenewResponse><wsnt:TerminationTime>2026-11-21T14:58:00Z</wsnt:TerminationTime><wsnt:CurrentTime>2026-11-21T14:57:00Z</wsnt:CurrentTime></wsnt:RenewResponse></s:Body></s:Envelope>"#;

/// 2026-11-21T14:56:03Z (`date -u -d @1795272963`).
const T0: i64 = 1_795_272_963_000_000;

#[test]
fn parses_a_subscription_with_its_reference_parameter() {
    let r = parse_subscription(CREATED).unwrap();
    assert_eq!(r.address, "http://10.0.0.7/onvif/services");
    assert_eq!(
        r.params,
        [RefParam {
            namespace: Some("http://www.axis.com/2009/event".into()),
            name: "SubscriptionId".into(),
            value: "4".into()
        }]
    );
    assert_eq!(r.current_us, Some(T0));
    assert_eq!(r.termination_us, Some(T0 + 60_000_000));
    assert!(parse_subscription(PULLED).is_err());
}

#[test]
fn reads_motion_from_both_motion_topics() {
    let (n, termination) = parse_pull_messages(PULLED).unwrap();
    assert_eq!(termination, Some(T0 + 67_000_000));
    assert_eq!(n.len(), 3);
    assert_eq!(n[0].topic, "RuleEngine/CellMotionDetector/Motion");
    assert_eq!(n[0].utc_time_us, Some(T0 + 6_250_000));
    assert_eq!(motion_state(&n[0]), Some(true));
    assert_eq!(source_token(&n[0]).as_deref(), Some("VideoSourceToken"));
    assert_eq!(n[1].topic, "VideoSource/MotionAlarm");
    assert_eq!(n[1].utc_time_us, Some(T0 + 6_000_000), "a time without zone is UTC");
    assert_eq!(motion_state(&n[1]), Some(false));
    assert_eq!(n[2].topic, "Device/IO/Port");
    assert_eq!(motion_state(&n[2]), None, "not a motion topic");
    assert_eq!(parse_renew(RENEWED).unwrap(), Some(T0 + 117_000_000));
}

#[test]
fn normalizes_topics() {
    assert_eq!(normalize_topic("tns1:RuleEngine/CellMotionDetector/Motion//."), "RuleEngine/CellMotionDetector/Motion");
    assert_eq!(normalize_topic(" tns1:VideoSource/tnsaxis:MotionAlarm "), "VideoSource/MotionAlarm");
    let n = Notification {
        topic: "RuleEngine/MotionRegionDetector/Motion".into(),
        data: vec![("State".into(), "1".into())],
        ..Notification::default()
    };
    assert_eq!(motion_state(&n), Some(true));
    let n = Notification { data: vec![("State".into(), "maybe".into())], ..n };
    assert_eq!(motion_state(&n), None);
}

#[test]
fn bounds_what_one_reply_can_carry() {
    let one = &PULLED[PULLED.find("<wsnt:NotificationMessage>").unwrap()..PULLED.find("<wsnt:NotificationMessage><wsnt:Topic Dialect=\"http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet\">tns1:VideoSource").unwrap()];
    let flood = PULLED.replacen(one, &one.repeat(500), 1);
    let (n, _) = parse_pull_messages(&flood).unwrap();
    assert_eq!(n.len(), MAX_NOTIFICATIONS);
    let items = PULLED.replacen(
        r#"<tt:SimpleItem Name="IsMotion" Value="true"/>"#,
        &r#"<tt:SimpleItem Name="x" Value="y"/>"#.repeat(100),
        1,
    );
    let (n, _) = parse_pull_messages(&items).unwrap();
    assert_eq!(n[0].data.len(), MAX_ITEMS);
    assert_eq!(motion_state(&n[0]), None);
}

#[test]
fn subscription_end_follows_the_cameras_own_clock() {
    let c = Client::new(None);
    let now = crate::time::now_us();
    // A camera a day behind: CurrentTime and TerminationTime are both in its past.
    let end = end_on_our_clock(&c, Some(T0 - 86_400_000_000), Some(T0 - 86_400_000_000 + 30_000_000));
    assert!((end - now - 30_000_000).abs() < 1_000_000, "{}", end - now);
    assert!(end_on_our_clock(&c, None, None) >= now + LIFETIME.as_micros() as i64);
}

proptest::proptest! {
    #![proptest_config(crate::onvif::testdata::config())]
    #[test]
    fn parsers_take_any_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = parse_subscription(&s);
        let _ = parse_pull_messages(&s);
        let _ = parse_renew(&s);
        let _ = normalize_topic(&s);
    }

    #[test]
    fn parsers_take_damaged_replies(c in mutated(CREATED), p in mutated(PULLED), r in mutated(RENEWED)) {
        let _ = parse_subscription(&c);
        if let Ok((n, _)) = parse_pull_messages(&p) {
            for n in &n {
                let _ = motion_state(n);
            }
        }
        let _ = parse_renew(&r);
    }
}
