//! A camera's own motion events over an ONVIF PullPoint subscription (ONVIF Core 9.3,
//! WS-BaseNotification): CreatePullPointSubscription, a PullMessages loop, Renew before the
//! subscription ends, Unsubscribe when done. The camera detects motion; edgenvr decodes
//! nothing. Issue 16 (events) connects [`watch_motion`]'s callback to its event store.
//!
//! ```text
//! watch_motion ─ create ─▶ pull (waits ≤ PULL_WAIT on the camera) ─▶ notifications
//!        ▲                  │  renew when < RENEW_BEFORE is left (fails → new subscription)
//!        └─ back-off ◀── error                 motion_state(topic, data) ─▶ MotionEvent
//! ```
//!
//! Bounds (see `docs/design/onvif.md`, "Events"): each reply is read up to
//! `soap::MAX_REPLY_BYTES`; at most [`MESSAGE_LIMIT`] messages are asked per pull and at most
//! [`MAX_NOTIFICATIONS`] read from one reply; a subscription lives [`LIFETIME`] unless
//! renewed, so one the camera was never told to end (power cut) frees itself soon. One
//! thread per watched camera, blocked in a pull most of the time.

use crate::error::Result;
use crate::onvif::soap::{bad_reply, Client};
use crate::onvif::xml::{self, malformed, Malformed};
use crate::shutdown::Shutdown;
use std::time::Duration;

const NS_EVENTS: &str = "http://www.onvif.org/ver10/events/wsdl";
const NS_WSNT: &str = "http://docs.oasis-open.org/wsn/b-2";
const NS_WSA: &str = "http://www.w3.org/2005/08/addressing";

/// How long a pull may wait on the camera for a message (PullMessages `Timeout`). A stop
/// is noticed within this plus the network's delay.
pub const PULL_WAIT: Duration = Duration::from_secs(5);
/// Messages asked for per pull (`MessageLimit`).
pub const MESSAGE_LIMIT: u32 = 16;
/// Most notifications read from one reply, whatever the camera sends.
pub const MAX_NOTIFICATIONS: usize = 64;
/// Most `SimpleItem`s read from a message's `Source` and `Data` each.
pub const MAX_ITEMS: usize = 8;
/// Most reference parameters echoed to the subscription (cameras use one).
pub const MAX_REF_PARAMS: usize = 4;
/// The subscription's lifetime, asked at creation and at every renewal.
pub const LIFETIME: Duration = Duration::from_secs(60);
/// Renew when less than this is left of the subscription.
pub const RENEW_BEFORE: Duration = Duration::from_secs(20);
/// Pulls that come back empty are at least this far apart (some cameras ignore `Timeout`
/// and answer at once).
pub const MIN_PULL_INTERVAL: Duration = Duration::from_secs(1);
/// Back-off after a failure: first and longest wait before subscribing again.
pub const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

/// A motion state change reported by a camera.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MotionEvent {
    /// The camera's id (as the caller named it).
    pub camera: String,
    /// Motion started (`true`) or ended (`false`).
    pub active: bool,
    /// When, in µs since the epoch on *our* clock (the camera's stamp minus its offset).
    pub time_us: i64,
    /// The topic it came on, prefixes removed (`RuleEngine/CellMotionDetector/Motion`).
    pub topic: String,
    /// The video source token, if the camera named one.
    pub source: Option<String>,
}

/// One notification as received (bounded as documented on the constants).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notification {
    /// The topic with namespace prefixes removed from each segment.
    pub topic: String,
    /// The message's `UtcTime`, µs since the epoch on the camera's clock.
    pub utc_time_us: Option<i64>,
    /// `Initialized`, `Changed` or `Deleted`.
    pub operation: Option<String>,
    /// `Source` items (name, value).
    pub source: Vec<(String, String)>,
    /// `Data` items (name, value).
    pub data: Vec<(String, String)>,
}

/// A WS-Addressing reference parameter to echo in every call to the subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefParam {
    /// Its namespace URI.
    pub namespace: Option<String>,
    /// Its local name (`SubscriptionId` on most cameras).
    pub name: String,
    /// Its text.
    pub value: String,
}

/// Where a subscription lives and when it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRef {
    /// The subscription manager's address (absolute http URL).
    pub address: String,
    /// Reference parameters to echo.
    pub params: Vec<RefParam>,
    /// The camera's `CurrentTime` when it answered (its clock), if sent.
    pub current_us: Option<i64>,
    /// `TerminationTime` (camera clock), if sent.
    pub termination_us: Option<i64>,
}

/// `xs:dateTime` as cameras write it; a missing zone means UTC.
fn parse_datetime(s: &str) -> Option<i64> {
    crate::time::parse_time(s).or_else(|| crate::time::parse_time(&format!("{s}Z")))
}

/// `tns1:RuleEngine/tnsaxis:X//.` → `RuleEngine/X`.
pub fn normalize_topic(t: &str) -> String {
    let t = t.trim().trim_end_matches("//.").trim_end_matches('/');
    let segs: Vec<&str> = t.split('/').map(|s| s.rsplit(':').next().unwrap_or(s)).collect();
    xml::bounded(&segs.join("/"), xml::MAX_TEXT)
}

/// Parses a CreatePullPointSubscription reply.
pub fn parse_subscription(text: &str) -> Result<SubscriptionRef, Malformed> {
    let doc = xml::parse(text)?;
    let r = xml::child(xml::body(&doc)?, "CreatePullPointSubscriptionResponse")
        .ok_or_else(|| malformed("no CreatePullPointSubscriptionResponse"))?;
    let epr = xml::child(r, "SubscriptionReference").ok_or_else(|| malformed("no SubscriptionReference"))?;
    let address = xml::text_at(epr, &["Address"])
        .filter(|a| a.starts_with("http://") || a.starts_with("https://"))
        .ok_or_else(|| malformed("no subscription address"))?;
    let mut params = Vec::new();
    if let Some(rp) = xml::child(epr, "ReferenceParameters") {
        for p in rp.children().filter(|c| c.is_element()).take(MAX_REF_PARAMS) {
            params.push(RefParam {
                namespace: p.tag_name().namespace().map(|n| xml::bounded(n, xml::MAX_TEXT)),
                name: xml::bounded(p.tag_name().name(), 64),
                value: xml::text(p),
            });
        }
    }
    Ok(SubscriptionRef {
        address,
        params,
        current_us: xml::text_at(r, &["CurrentTime"]).and_then(|t| parse_datetime(&t)),
        termination_us: xml::text_at(r, &["TerminationTime"]).and_then(|t| parse_datetime(&t)),
    })
}

/// Parses a PullMessages reply: the notifications and the new `TerminationTime`, if any.
pub fn parse_pull_messages(text: &str) -> Result<(Vec<Notification>, Option<i64>), Malformed> {
    let doc = xml::parse(text)?;
    let r = xml::child(xml::body(&doc)?, "PullMessagesResponse").ok_or_else(|| malformed("no PullMessagesResponse"))?;
    let termination = xml::text_at(r, &["TerminationTime"]).and_then(|t| parse_datetime(&t));
    let mut out = Vec::new();
    for nm in xml::children(r, "NotificationMessage").take(MAX_NOTIFICATIONS) {
        let Some(topic) = xml::text_at(nm, &["Topic"]) else { continue };
        let msg = xml::path(nm, &["Message", "Message"]);
        let items = |part: &str| -> Vec<(String, String)> {
            let Some(p) = msg.and_then(|m| xml::child(m, part)) else { return Vec::new() };
            xml::children(p, "SimpleItem")
                .take(MAX_ITEMS)
                .filter_map(|i| Some((xml::attr(i, "Name")?, xml::attr(i, "Value").unwrap_or_default())))
                .collect()
        };
        out.push(Notification {
            topic: normalize_topic(&topic),
            utc_time_us: msg.and_then(|m| xml::attr(m, "UtcTime")).and_then(|t| parse_datetime(&t)),
            operation: msg.and_then(|m| xml::attr(m, "PropertyOperation")),
            source: items("Source"),
            data: items("Data"),
        });
    }
    Ok((out, termination))
}

/// Parses a Renew reply: the new `TerminationTime`, if given.
pub fn parse_renew(text: &str) -> Result<Option<i64>, Malformed> {
    let doc = xml::parse(text)?;
    let r = xml::child(xml::body(&doc)?, "RenewResponse").ok_or_else(|| malformed("no RenewResponse"))?;
    Ok(xml::text_at(r, &["TerminationTime"]).and_then(|t| parse_datetime(&t)))
}

/// Whether `n` says motion is on (`Some(true)`), off (`Some(false)`), or is not about
/// motion (`None`). Topics: `RuleEngine/CellMotionDetector/Motion` (`IsMotion`, the
/// Profile S motion detector), `VideoSource/MotionAlarm` (`State`) and
/// `RuleEngine/MotionRegionDetector/Motion` (`State`, Profile T).
pub fn motion_state(n: &Notification) -> Option<bool> {
    let key = if n.topic.ends_with("RuleEngine/CellMotionDetector/Motion") {
        "IsMotion"
    } else if n.topic.ends_with("VideoSource/MotionAlarm")
        || n.topic.ends_with("RuleEngine/MotionRegionDetector/Motion")
    {
        "State"
    } else {
        return None;
    };
    let v = &n.data.iter().find(|(k, _)| k == key)?.1;
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// The video source a notification is about, by the names cameras use for it.
fn source_token(n: &Notification) -> Option<String> {
    n.source
        .iter()
        .find(|(k, _)| matches!(k.as_str(), "VideoSourceConfigurationToken" | "VideoSourceToken" | "Source"))
        .map(|(_, v)| v.clone())
}

/// A live PullPoint subscription on one camera.
#[derive(Debug)]
pub struct Subscription {
    reference: SubscriptionRef,
    /// When it ends, µs on our clock.
    ends_us: i64,
}

impl Subscription {
    /// CreatePullPointSubscription at the event service `events_url`.
    pub fn create(c: &Client, events_url: &str) -> Result<Subscription> {
        let body = format!(
            r#"<tev:CreatePullPointSubscription xmlns:tev="{NS_EVENTS}"><tev:InitialTerminationTime>PT{}S</tev:InitialTerminationTime></tev:CreatePullPointSubscription>"#,
            LIFETIME.as_secs()
        );
        let action = "http://www.onvif.org/ver10/events/wsdl/EventPortType/CreatePullPointSubscriptionRequest";
        let reply = c.call(events_url, action, &body)?;
        let reference =
            parse_subscription(&reply).map_err(|e| bad_reply(events_url, "CreatePullPointSubscription", e))?;
        let ends_us = end_on_our_clock(c, reference.current_us, reference.termination_us);
        Ok(Subscription { reference, ends_us })
    }

    /// The subscription's address and reference parameters.
    pub fn reference(&self) -> &SubscriptionRef {
        &self.reference
    }

    /// Time left before the camera ends the subscription.
    pub fn remaining(&self) -> Duration {
        Duration::from_micros(self.ends_us.saturating_sub(crate::time::now_us()).max(0) as u64)
    }

    /// PullMessages: waits up to [`PULL_WAIT`] on the camera for up to [`MESSAGE_LIMIT`]
    /// messages.
    pub fn pull(&mut self, c: &Client) -> Result<Vec<Notification>> {
        let body = format!(
            r#"<tev:PullMessages xmlns:tev="{NS_EVENTS}"><tev:Timeout>PT{}S</tev:Timeout><tev:MessageLimit>{MESSAGE_LIMIT}</tev:MessageLimit></tev:PullMessages>"#,
            PULL_WAIT.as_secs()
        );
        let reply =
            self.call(c, "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription/PullMessagesRequest", &body)?;
        let (n, termination) =
            parse_pull_messages(&reply).map_err(|e| bad_reply(&self.reference.address, "PullMessages", e))?;
        if termination.is_some() {
            // Some cameras extend the subscription on every pull and say so here.
            self.ends_us = self.ends_us.max(end_on_our_clock(c, None, termination));
        }
        Ok(n)
    }

    /// Renew: extends the subscription by [`LIFETIME`].
    pub fn renew(&mut self, c: &Client) -> Result<()> {
        let body = format!(
            r#"<wsnt:Renew xmlns:wsnt="{NS_WSNT}"><wsnt:TerminationTime>PT{}S</wsnt:TerminationTime></wsnt:Renew>"#,
            LIFETIME.as_secs()
        );
        let reply = self.call(c, "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewRequest", &body)?;
        let termination = parse_renew(&reply).map_err(|e| bad_reply(&self.reference.address, "Renew", e))?;
        self.ends_us = end_on_our_clock(c, None, termination);
        Ok(())
    }

    /// Unsubscribe: the camera frees the pull point now instead of at its end.
    pub fn unsubscribe(&self, c: &Client) -> Result<()> {
        let body = format!(r#"<wsnt:Unsubscribe xmlns:wsnt="{NS_WSNT}"/>"#);
        self.call(c, "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest", &body).map(drop)
    }

    /// A call to the subscription: WS-Addressing `Action` and `To`, and every reference
    /// parameter echoed as a header (WS-Addressing 1.0, 3.3).
    fn call(&self, c: &Client, action: &str, body: &str) -> Result<String> {
        let mut h = format!(
            r#"<wsa:Action xmlns:wsa="{NS_WSA}">{}</wsa:Action><wsa:To xmlns:wsa="{NS_WSA}">{}</wsa:To>"#,
            xml::escape(action),
            xml::escape(&self.reference.address)
        );
        for p in &self.reference.params {
            let ns = p.namespace.as_deref().map(|n| format!(r#" xmlns:rp="{}""#, xml::escape(n))).unwrap_or_default();
            let name = if p.namespace.is_some() { format!("rp:{}", p.name) } else { p.name.clone() };
            h.push_str(&format!(
                r#"<{name}{ns} xmlns:wsa="{NS_WSA}" wsa:IsReferenceParameter="true">{}</{name}>"#,
                xml::escape(&p.value)
            ));
        }
        c.call_with_headers(&self.reference.address, action, &h, body)
    }
}

/// The end of a subscription on our clock: from the camera's own `CurrentTime` when it sent
/// one (robust to its clock being off), else through the client's known offset; [`LIFETIME`]
/// from now if the camera said nothing.
fn end_on_our_clock(c: &Client, current_us: Option<i64>, termination_us: Option<i64>) -> i64 {
    let now = crate::time::now_us();
    let lifetime_us = LIFETIME.as_micros() as i64;
    match (current_us, termination_us) {
        (Some(cur), Some(end)) => now + (end - cur).clamp(0, 24 * 3600 * 1_000_000),
        (None, Some(end)) => c.to_local_us(end).clamp(now, now + 24 * 3600 * 1_000_000),
        _ => now + lifetime_us,
    }
}

/// Where to watch one camera for motion.
#[derive(Clone, Debug)]
pub struct MotionSource {
    /// The camera id put in every [`MotionEvent`].
    pub camera: String,
    /// The device service (for the clock offset and, when `events_url` is `None`, to find
    /// the event service).
    pub device_url: String,
    /// The event service, if known.
    pub events_url: Option<String>,
}

/// Watches `src` for motion until `stop` fires, calling `on_event` for every motion change
/// (on the calling thread). Subscribes, pulls, renews, re-subscribes after any failure with
/// a doubling back-off, and unsubscribes on the way out. Each distinct failure is logged once.
pub fn watch_motion(src: &MotionSource, client: &Client, stop: &Shutdown, mut on_event: impl FnMut(MotionEvent)) {
    let mut backoff = BACKOFF.0;
    let mut last_error = String::new();
    while !stop.is_triggered() {
        match run_subscription(src, client, stop, &mut on_event) {
            Ok(()) => return,
            Err(e) => {
                let msg = e.to_string();
                if msg != last_error {
                    log::warn!("camera {}: motion events: {msg}; retrying", src.camera);
                    last_error = msg;
                }
            }
        }
        if stop.wait_timeout(backoff) {
            return;
        }
        backoff = (backoff * 2).min(BACKOFF.1);
    }
}

/// One subscription's life: returns `Ok` when `stop` fired, `Err` when it broke.
fn run_subscription(
    src: &MotionSource,
    client: &Client,
    stop: &Shutdown,
    on_event: &mut impl FnMut(MotionEvent),
) -> Result<()> {
    let _ = crate::onvif::device::sync_clock(client, &src.device_url);
    let events_url = match &src.events_url {
        Some(u) => u.clone(),
        None => crate::onvif::device::get_services(client, &src.device_url)?
            .events
            .ok_or_else(|| crate::err!(Media, "the camera has no event service"))?,
    };
    let mut sub = Subscription::create(client, &events_url)?;
    log::info!("camera {}: subscribed to motion events", src.camera);
    loop {
        if stop.is_triggered() {
            let _ = sub.unsubscribe(client);
            return Ok(());
        }
        if sub.remaining() < RENEW_BEFORE {
            if let Err(e) = sub.renew(client) {
                // Cameras without Renew (or that lost the subscription): start a new one.
                log::debug!("camera {}: Renew failed ({e}); subscribing again", src.camera);
                let _ = sub.unsubscribe(client);
                sub = Subscription::create(client, &events_url)?;
            }
        }
        let pulled_at = std::time::Instant::now();
        let notifications = match sub.pull(client) {
            Ok(n) => n,
            Err(e) => {
                let _ = sub.unsubscribe(client);
                return Err(e);
            }
        };
        if notifications.is_empty() && pulled_at.elapsed() < MIN_PULL_INTERVAL {
            // A camera that answers at once instead of waiting must not make this a busy loop.
            stop.wait_timeout(MIN_PULL_INTERVAL - pulled_at.elapsed());
        }
        for n in &notifications {
            if let Some(active) = motion_state(n) {
                let time_us = n.utc_time_us.map_or_else(crate::time::now_us, |t| client.to_local_us(t));
                on_event(MotionEvent {
                    camera: src.camera.clone(),
                    active,
                    time_us,
                    topic: n.topic.clone(),
                    source: source_token(n),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
