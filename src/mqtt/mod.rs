//! MQTT: events and state out to a broker (and Home Assistant's discovery), commands in.
//!
//! Runs only when `[mqtt]` is configured, on its own thread `mqtt` with a current-thread
//! tokio runtime (rumqttc 0.25 without default features): a broker that is slow or down then
//! shares no thread with RTSP reads or the API, and recording never waits for it. The
//! service's side only pushes into the bounded [`outbox`] (a mutex held for a queue
//! operation) and wakes the thread.
//!
//! Two tasks on that runtime:
//! - the poller drives rumqttc's event loop: connects, reconnects with back-off (1 s
//!   doubling to 30 s; the first failure of an outage is logged, later ones not), and on
//!   every connect subscribes to the command topics and Home Assistant's status, and queues
//!   availability, discovery and full state (a restarted broker lost its retained
//!   messages); it also does that when Home Assistant says `online`;
//! - the sender hands queued messages to the client while connected, events one at a time
//!   until acknowledged ([`outbox`]'s rules), and refreshes state every [`STATE_EVERY`].
//!
//! The password is read from `password_file` when the thread starts and is never logged
//! (rumqttc's options hold it; neither they nor ours are printed).

pub mod outbox;
#[cfg(feature = "tls")]
mod tls;
pub mod topics;

use crate::config::MqttConfig;
use crate::error::{Error, Result};
use crate::events::{Change, Events, Source, StartEvent};
use crate::shutdown::Shutdown;
use outbox::{Kind, Msg, Outbox};
use rumqttc::{AsyncClient, ConnectReturnCode, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use topics::{Command, Topics};

/// How often state (recording, storage) is published when nothing else changes.
pub const STATE_EVERY: Duration = Duration::from_secs(30);
/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Requests rumqttc's client may hold before its event loop takes them.
const CLIENT_CHANNEL: usize = 16;
/// Largest packet accepted from the broker (commands are tiny; a bigger one is refused by
/// rumqttc, which drops the connection).
const MAX_INCOMING: usize = 64 << 10;

/// What the service is doing, for state messages: built on the MQTT thread.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// `(camera id, recording now)`.
    pub cameras: Vec<(String, bool)>,
    /// Free bytes over every storage root.
    pub free_bytes: u64,
    /// Size of every storage root's file system.
    pub total_bytes: u64,
}

/// Builds a [`Snapshot`] (the service passes one that reads the cameras' counters and the
/// roots' file systems).
pub type SnapshotFn = Arc<dyn Fn() -> Snapshot + Send + Sync>;

/// A camera's latest keyframe as a JPEG, if one can be had now (the service passes one
/// backed by its thumbnailer). Blocking: run on the blocking pool.
pub type ThumbnailFn = Arc<dyn Fn(&str) -> Option<Vec<u8>> + Send + Sync>;

/// The ids of the cameras configured now (the camera manager's list: it changes over the
/// API, by `SIGHUP`, and comes from the state file at start).
pub type CamerasFn = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// A broker down (or refusing us) longer than this makes the service unhealthy: well past
/// the longest back-off, so a broker restart does not flap health.
pub const DOWN_UNHEALTHY: Duration = Duration::from_secs(120);

/// Width of the published thumbnails: about 10-30 KiB each, one per camera queued at most.
pub const THUMBNAIL_WIDTH: usize = 320;

/// Counters for `/api/v1/status`, health and tests.
#[derive(Debug, Default)]
pub struct MqttStats {
    /// Whether the broker connection is up.
    pub connected: AtomicBool,
    /// Since when it is down (µs since the epoch; 0 while connected): health reports a
    /// broker down longer than [`DOWN_UNHEALTHY`].
    pub down_since_us: AtomicI64,
    /// Connections made since start.
    pub connects: AtomicU64,
    /// Messages handed to the broker (state and events).
    pub published: AtomicU64,
    /// Events the broker acknowledged.
    pub events_sent: AtomicU64,
    /// State messages dropped (queue full).
    pub dropped_state: AtomicU64,
    /// Events dropped (queue full of events).
    pub dropped_events: AtomicU64,
}

impl MqttStats {
    /// The connection is down: returns whether it was up (the down time starts then).
    fn went_down(&self) -> bool {
        let was = self.connected.swap(false, Relaxed);
        if was {
            self.down_since_us.store(crate::time::now_us(), Relaxed);
        }
        was
    }

    /// How long the broker has been down at `now_us` (`None` while connected).
    pub fn down_for(&self, now_us: i64) -> Option<Duration> {
        let since = self.down_since_us.load(Relaxed);
        (!self.connected.load(Relaxed) && since > 0).then(|| Duration::from_micros((now_us - since).max(0) as u64))
    }
}

struct Shared {
    outbox: Mutex<Outbox>,
    wake: Notify,
    /// State should be rebuilt (an event started or ended).
    dirty: AtomicBool,
    stats: Arc<MqttStats>,
    topics: Topics,
    cameras: CamerasFn,
    /// The cameras whose discovery configs went out last (so that a removed one's are
    /// cleared, also after a reconnect).
    announced: Mutex<Vec<String>>,
    /// The camera list changed since the last announcement.
    cameras_changed: AtomicBool,
    events: Arc<Events>,
    snapshot: SnapshotFn,
    thumbnails: bool,
}

impl Shared {
    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, m: Msg) {
        let mut o = self.outbox();
        o.push(m);
        self.stats.dropped_state.store(o.dropped_state, Relaxed);
        self.stats.dropped_events.store(o.dropped_events, Relaxed);
    }

    fn state(&self, topic: String, payload: impl Into<Vec<u8>>) {
        self.push(Msg { topic, payload: payload.into(), retain: true, kind: Kind::State });
    }

    /// Queues every state message.
    fn queue_state(&self) {
        let s = (self.snapshot)();
        let active = self.events.active_cameras().unwrap_or_default();
        let on = |b: bool| if b { "ON" } else { "OFF" };
        for (cam, recording) in &s.cameras {
            self.state(self.topics.camera(cam, "recording"), on(*recording));
            self.state(self.topics.camera(cam, "event_active"), on(active.contains(cam)));
        }
        let doc = serde_json::json!({"free_bytes": s.free_bytes, "total_bytes": s.total_bytes});
        self.state(self.topics.storage(), doc.to_string());
    }

    /// Availability, discovery and state: after every connect and when Home Assistant
    /// comes online.
    fn queue_announcement(&self) {
        self.state(self.topics.availability(), "online");
        let (topic, payload) = self.topics.box_discovery();
        self.state(topic, payload);
        self.queue_cameras(true);
        self.queue_state();
        self.wake.notify_one();
    }

    /// Discovery follows the camera list: configs for cameras not announced yet (every
    /// camera with `all`), and an empty retained payload on every retained topic of a
    /// camera that went (Home Assistant then removes its entities; the broker forgets the
    /// retained state).
    fn queue_cameras(&self, all: bool) {
        self.cameras_changed.store(false, Relaxed);
        let now = (self.cameras)();
        let mut announced = self.announced.lock().unwrap_or_else(|p| p.into_inner());
        for msg in camera_changes(&self.topics, &announced, &now, all, self.thumbnails) {
            self.push(msg);
        }
        *announced = now;
    }
}

/// What changes between `before` and `now` (camera ids) means for the broker: discovery
/// for the new cameras (for all of `now` with `all`), empty retained payloads for every
/// retained topic of the cameras that went.
fn camera_changes(topics: &Topics, before: &[String], now: &[String], all: bool, thumbnails: bool) -> Vec<Msg> {
    let state = |topic, payload| Msg { topic, payload, retain: true, kind: Kind::State };
    let mut v = Vec::new();
    for gone in before.iter().filter(|c| !now.contains(c)) {
        v.extend(topics.camera_retained(gone).into_iter().map(|t| state(t, Vec::new())));
    }
    for cam in now.iter().filter(|c| all || !before.contains(c)) {
        v.extend(topics.camera_discovery(cam, thumbnails).into_iter().map(|(t, p)| state(t, p)));
    }
    v
}

/// The running client.
pub struct MqttHandle {
    thread: std::thread::JoinHandle<()>,
    shared: Arc<Shared>,
    /// Its counters.
    pub stats: Arc<MqttStats>,
}

impl MqttHandle {
    /// Waits for the thread (after shutdown fired; it says `offline` first when connected).
    pub fn join(self) {
        let _ = self.thread.join();
    }

    /// What to call when the camera list changed: discovery and state follow it at once
    /// (when connected; else at the next connect). Cheap: sets a flag and wakes the thread.
    pub fn on_cameras_changed(&self) -> impl Fn() + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || {
            shared.cameras_changed.store(true, Relaxed);
            shared.wake.notify_one();
        }
    }
}

/// Reads the first line of `path` (the broker password).
fn read_password(path: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("mqtt.password_file: cannot read {}", path.display()), e))?;
    Ok(text.lines().next().unwrap_or("").to_owned())
}

fn options(cfg: &MqttConfig, box_id: &str, topics: &Topics) -> Result<MqttOptions> {
    let mut o = MqttOptions::new(format!("edgenvr-{box_id}"), cfg.host.clone(), cfg.port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_session(true);
    o.set_max_packet_size(MAX_INCOMING, 256 << 10);
    o.set_request_channel_capacity(CLIENT_CHANNEL);
    o.set_last_will(LastWill::new(topics.availability(), "offline", QoS::AtLeastOnce, true));
    #[cfg(feature = "tls")]
    if cfg.tls {
        o.set_transport(tls::transport(cfg)?);
    }
    if let Some(user) = &cfg.username {
        let password = match &cfg.password_file {
            Some(p) => read_password(p)?,
            None => String::new(),
        };
        o.set_credentials(user.clone(), password);
    }
    Ok(o)
}

/// What the client reports on, from the service.
pub struct Sources {
    /// The camera ids now.
    pub cameras: CamerasFn,
    /// The events (the client subscribes to them and starts and ends them).
    pub events: Arc<Events>,
    /// State.
    pub snapshot: SnapshotFn,
    /// Thumbnails, if the config asks for them.
    pub thumbnail: Option<ThumbnailFn>,
}

/// Starts the client thread for `cfg`; events are told to it by subscribing to `events`.
pub fn start(cfg: &MqttConfig, box_id: &str, sources: Sources, shutdown: &Shutdown) -> Result<MqttHandle> {
    let Sources { cameras, events, snapshot, thumbnail } = sources;
    let thumbnail = thumbnail.zip(cfg.thumbnail_interval);
    let topics = Topics::new(cfg, box_id);
    let opts = options(cfg, box_id, &topics)?;
    let stats = Arc::new(MqttStats::default());
    stats.down_since_us.store(crate::time::now_us(), Relaxed);
    let shared = Arc::new(Shared {
        outbox: Mutex::default(),
        wake: Notify::new(),
        dirty: AtomicBool::new(false),
        stats: stats.clone(),
        topics,
        cameras,
        announced: Mutex::default(),
        cameras_changed: AtomicBool::new(false),
        events: events.clone(),
        snapshot,
        thumbnails: thumbnail.is_some(),
    });
    let s = shared.clone();
    events.subscribe(Box::new(move |c: &Change| {
        let (camera, payload) = topics::event_payload(c);
        s.push(Msg { topic: s.topics.camera(&camera, "event"), payload, retain: false, kind: Kind::Event });
        s.dirty.store(true, Relaxed);
        s.wake.notify_one();
    }))?;
    let (stop_tx, stop) = watch::channel(false);
    shutdown.on_trigger(move || {
        let _ = stop_tx.send(true);
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the MQTT runtime", e))?;
    let where_ = format!("{}{}:{}", if cfg.tls { "tls://" } else { "" }, cfg.host, cfg.port);
    let s = shared.clone();
    let thread = std::thread::Builder::new()
        .name("mqtt".into())
        .spawn(move || rt.block_on(run(s, opts, stop, where_, thumbnail)))
        .map_err(|e| Error::io("spawning the MQTT thread", e))?;
    Ok(MqttHandle { thread, shared, stats })
}

async fn run(
    shared: Arc<Shared>,
    opts: MqttOptions,
    stop: watch::Receiver<bool>,
    broker: String,
    thumbnails: Option<(ThumbnailFn, Duration)>,
) {
    let (client, eventloop) = AsyncClient::new(opts, CLIENT_CHANNEL);
    let sender = tokio::spawn(send_loop(shared.clone(), client.clone(), stop.clone()));
    let thumbs = thumbnails.map(|(f, every)| tokio::spawn(thumbnail_loop(shared.clone(), f, every, stop.clone())));
    poll_loop(&shared, &client, eventloop, stop, &broker).await;
    let _ = sender.await;
    if let Some(t) = thumbs {
        let _ = t.await;
    }
}

/// Every `every`, each camera's latest keyframe as a JPEG on `camera/{id}/thumbnail`
/// (retained; a newer one replaces a queued one). Decoding runs on the blocking pool (one
/// thread while it runs; the thumbnailer itself allows one decode at a time).
async fn thumbnail_loop(shared: Arc<Shared>, f: ThumbnailFn, every: Duration, stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped(stop.clone()) => return,
            _ = tick.tick() => {}
        }
        if !shared.stats.connected.load(Relaxed) {
            continue;
        }
        for cam in (shared.cameras)() {
            let (f, c) = (f.clone(), cam.clone());
            let jpeg = tokio::task::spawn_blocking(move || f(&c)).await;
            // A camera removed meanwhile had its retained topics cleared: none come back.
            // (`announced` changes only on this thread, so nothing runs between check and push.)
            let current = shared.announced.lock().unwrap_or_else(|p| p.into_inner()).contains(&cam);
            if let (Ok(Some(jpeg)), true) = (jpeg, current) {
                shared.state(shared.topics.camera(&cam, "thumbnail"), jpeg);
                shared.wake.notify_one();
            }
        }
    }
}

/// Waits until `stop` says true.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn poll_loop(
    shared: &Shared,
    client: &AsyncClient,
    mut el: EventLoop,
    stop: watch::Receiver<bool>,
    broker: &str,
) {
    let mut backoff = Duration::from_secs(1);
    let mut failing = false;
    loop {
        let ev = tokio::select! {
            _ = stopped(stop.clone()) => break,
            ev = el.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => {
                log::info!("mqtt: connected to {broker}");
                backoff = Duration::from_secs(1);
                failing = false;
                shared.stats.connected.store(true, Relaxed);
                shared.stats.down_since_us.store(0, Relaxed);
                shared.stats.connects.fetch_add(1, Relaxed);
                let subs = [shared.topics.commands(), shared.topics.ha_status()];
                let _ = client.try_subscribe_many(subs.map(|t| rumqttc::SubscribeFilter::new(t, QoS::AtLeastOnce)));
                shared.queue_announcement();
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                if !failing {
                    log::warn!("mqtt: {broker} refused the connection: {:?}; retrying with back-off", ack.code);
                }
                shared.stats.went_down();
                failing = true;
                backoff = pause(backoff, stop.clone()).await;
            }
            Ok(Event::Incoming(Packet::Publish(p))) => on_message(shared, &p.topic, &p.payload),
            Ok(Event::Incoming(Packet::PubAck(a))) => {
                if shared.outbox().puback(a.pkid) {
                    shared.stats.events_sent.fetch_add(1, Relaxed);
                    shared.wake.notify_one();
                }
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) if pkid != 0 => shared.outbox().sent(pkid),
            Ok(_) => {}
            Err(e) => {
                let was = shared.stats.went_down();
                shared.outbox().disconnected();
                if was || !failing {
                    log::warn!("mqtt: {broker}: {e}; retrying with back-off (at most {} s)", MAX_BACKOFF.as_secs());
                }
                failing = true;
                backoff = pause(backoff, stop.clone()).await;
            }
        }
    }
    // Say goodbye while connected: the will would say "offline" too, but only after the
    // broker's keep-alive runs out.
    if shared.stats.connected.load(Relaxed) {
        let _ = client.try_publish(shared.topics.availability(), QoS::AtMostOnce, true, "offline");
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(ev) = el.poll().await {
                if matches!(ev, Event::Outgoing(Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// Sleeps `backoff` (or until stop) and returns the next one.
async fn pause(backoff: Duration, stop: watch::Receiver<bool>) -> Duration {
    tokio::select! {
        _ = stopped(stop) => {}
        _ = tokio::time::sleep(backoff) => {}
    }
    (backoff * 2).min(MAX_BACKOFF)
}

fn on_message(shared: &Shared, topic: &str, payload: &[u8]) {
    if topic == shared.topics.ha_status() {
        if payload == b"online" {
            log::info!("mqtt: Home Assistant is online; publishing discovery again");
            shared.queue_announcement();
        }
        return;
    }
    let Some(camera) = shared.topics.command_camera(topic) else { return };
    let r = match topics::parse_command(payload) {
        Err(why) => Err(crate::err!(InvalidArgument, "{why}")),
        Ok(Command::Start(label, note)) => match shared.events.open_with_label(camera, &label) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                let req = StartEvent {
                    camera: camera.to_owned(),
                    label,
                    source: Source::Mqtt,
                    start_us: None,
                    end_us: None,
                    note,
                };
                shared.events.start(&req).map(|_| ())
            }
            Err(e) => Err(e),
        },
        Ok(Command::End(label)) => shared.events.end_open(camera, &label).map(|_| ()),
    };
    if let Err(e) = r {
        log::warn!("mqtt: command on {topic}: {e}");
    }
}

async fn send_loop(shared: Arc<Shared>, client: AsyncClient, stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + STATE_EVERY, STATE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped(stop.clone()) => return,
            _ = shared.wake.notified() => {}
            _ = tick.tick() => shared.dirty.store(true, Relaxed),
        }
        if shared.cameras_changed.load(Relaxed) && shared.stats.connected.load(Relaxed) {
            shared.queue_cameras(false);
            shared.dirty.store(true, Relaxed);
        }
        if shared.dirty.swap(false, Relaxed) {
            shared.queue_state();
        }
        while shared.stats.connected.load(Relaxed) {
            let Some(m) = shared.outbox().take_next() else { break };
            let qos = if m.kind == Kind::Event { QoS::AtLeastOnce } else { QoS::AtMostOnce };
            if client.publish(m.topic, qos, m.retain, m.payload).await.is_err() {
                return;
            }
            shared.stats.published.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::topics::tests::topics;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Discovery follows the camera list: a new camera is announced, a removed one's
    /// retained topics (configs with or without the thumbnail entity, and state) are
    /// cleared, a kept one is not sent again unless everything is (after a connect).
    #[test]
    fn discovery_follows_the_camera_list() {
        let t = topics();
        let m = camera_changes(&t, &ids(&["door", "yard"]), &ids(&["door", "gate"]), false, false);
        let (cleared, configs): (Vec<_>, Vec<_>) = m.iter().partition(|m| m.payload.is_empty());
        assert!(m.iter().all(|m| m.retain && m.kind == Kind::State));
        let cleared: Vec<&str> = cleared.iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(
            cleared,
            [
                "homeassistant/binary_sensor/edgenvr_shed_yard/recording/config",
                "homeassistant/binary_sensor/edgenvr_shed_yard/event/config",
                "homeassistant/camera/edgenvr_shed_yard/thumbnail/config",
                "edgenvr/shed/camera/yard/recording",
                "edgenvr/shed/camera/yard/event_active",
                "edgenvr/shed/camera/yard/thumbnail",
            ]
        );
        let configs: Vec<&str> = configs.iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(
            configs,
            [
                "homeassistant/binary_sensor/edgenvr_shed_gate/recording/config",
                "homeassistant/binary_sensor/edgenvr_shed_gate/event/config",
            ]
        );
        let all = camera_changes(&t, &ids(&["door"]), &ids(&["door"]), true, true);
        assert_eq!(all.len(), 3, "both sensors and the camera entity of the kept camera");
        assert!(camera_changes(&t, &ids(&["door"]), &ids(&["door"]), false, true).is_empty());
    }
}
