//! The bounded outgoing queue between the service and the broker.
//!
//! Cap: [`CAP`] messages (each at most a few KiB: JSON documents and discovery configs), so
//! a broker that is down or slow costs at most about 0.5 MiB. Policy, in order:
//!
//! 1. A state message (retained: availability, per-camera state, storage, discovery)
//!    replaces a queued one for the same topic: only the newest state matters.
//! 2. When full, the oldest state message is dropped (counted in `dropped_state`).
//! 3. Events are dropped only when the queue holds nothing but events, oldest first
//!    (counted in `dropped_events`): never an event before state.
//! 4. Events go one at a time with QoS 1 and stay queued until the broker acknowledges
//!    them; a lost connection sends the unacknowledged one again (at least once: an event's
//!    JSON carries its id, so a receiver can tell a repeat).

use std::collections::VecDeque;

/// Most messages queued.
pub const CAP: usize = 256;

/// What a message is, for the drop policy.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Retained state: only the newest per topic matters.
    State,
    /// An event starting or ending: every one matters.
    Event,
}

/// One message to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    /// Full topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// Whether the broker keeps it for later subscribers.
    pub retain: bool,
    /// State or event.
    pub kind: Kind,
}

/// The queue and its counters.
#[derive(Debug, Default)]
pub struct Outbox {
    q: VecDeque<Msg>,
    /// The first queued event has been handed to the client and awaits its PUBACK.
    event_in_flight: bool,
    /// The packet id the client gave the event in flight, once it went out.
    in_flight_pkid: Option<u16>,
    /// State messages dropped because the queue was full.
    pub dropped_state: u64,
    /// Events dropped because the queue was full of events.
    pub dropped_events: u64,
}

impl Outbox {
    /// Queues `m` under the rules of the module doc.
    pub fn push(&mut self, m: Msg) {
        if m.kind == Kind::State {
            if let Some(old) = self.q.iter_mut().find(|x| x.kind == Kind::State && x.topic == m.topic) {
                *old = m;
                return;
            }
        }
        if self.q.len() >= CAP {
            if let Some(i) = self.q.iter().position(|x| x.kind == Kind::State) {
                self.q.remove(i);
                self.dropped_state += 1;
            } else if m.kind == Kind::State {
                self.dropped_state += 1;
                return;
            } else {
                // All events: the oldest not in flight goes.
                let i = usize::from(self.event_in_flight);
                self.q.remove(i);
                self.dropped_events += 1;
            }
        }
        self.q.push_back(m);
    }

    /// The next message to hand to the client: state messages in order, events one at a
    /// time (the in-flight event stays queued; later events wait behind it, state does not).
    pub fn take_next(&mut self) -> Option<Msg> {
        let mut seen_event = false;
        for i in 0..self.q.len() {
            match self.q[i].kind {
                Kind::State => return self.q.remove(i),
                Kind::Event if !seen_event && !self.event_in_flight => {
                    self.event_in_flight = true;
                    return Some(self.q[i].clone());
                }
                Kind::Event => seen_event = true,
            }
        }
        None
    }

    /// The client sent a QoS 1 publish with packet id `pkid`: the event in flight, if it
    /// has none yet.
    pub fn sent(&mut self, pkid: u16) {
        if self.event_in_flight && self.in_flight_pkid.is_none() {
            self.in_flight_pkid = Some(pkid);
        }
    }

    /// The broker acknowledged packet `pkid`; when it is the event in flight, the event
    /// leaves the queue. Returns whether it was.
    pub fn puback(&mut self, pkid: u16) -> bool {
        if self.in_flight_pkid != Some(pkid) {
            return false;
        }
        self.acked();
        true
    }

    /// The event in flight is done with: it leaves the queue.
    pub fn acked(&mut self) {
        if !self.event_in_flight {
            return;
        }
        self.event_in_flight = false;
        self.in_flight_pkid = None;
        if let Some(i) = self.q.iter().position(|x| x.kind == Kind::Event) {
            self.q.remove(i);
        }
    }

    /// The connection is gone: the event in flight is sent again after the next connect.
    pub fn disconnected(&mut self) {
        self.event_in_flight = false;
        self.in_flight_pkid = None;
    }

    /// Messages queued.
    pub fn len(&self) -> usize {
        self.q.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(t: &str, p: &str) -> Msg {
        Msg { topic: t.into(), payload: p.into(), retain: true, kind: Kind::State }
    }

    fn event(p: &str) -> Msg {
        Msg { topic: "e".into(), payload: p.into(), retain: false, kind: Kind::Event }
    }

    fn payloads(o: &mut Outbox) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(m) = o.take_next() {
            v.push(String::from_utf8(m.payload).unwrap());
            if m.kind == Kind::Event {
                o.acked();
            }
        }
        v
    }

    #[test]
    fn newest_state_per_topic_wins_and_events_keep_their_order() {
        let mut o = Outbox::default();
        o.push(state("a", "1"));
        o.push(event("e1"));
        o.push(state("a", "2"));
        o.push(event("e2"));
        assert_eq!(payloads(&mut o), ["2", "e1", "e2"]);
    }

    #[test]
    fn full_queue_drops_oldest_state_first_and_never_an_event_for_state() {
        let mut o = Outbox::default();
        o.push(state("s0", "s0"));
        for i in 0..CAP - 1 {
            o.push(event(&format!("e{i}")));
        }
        o.push(event("late"));
        assert_eq!((o.dropped_state, o.dropped_events, o.len()), (1, 0, CAP));
        o.push(state("s1", "s1"));
        assert_eq!((o.dropped_state, o.dropped_events), (2, 0), "state is refused rather than an event dropped");
        o.push(event("later"));
        assert_eq!(o.dropped_events, 1, "all events: the oldest goes");
        let p = payloads(&mut o);
        assert_eq!((p[0].as_str(), p.last().unwrap().as_str(), p.len()), ("e1", "later", CAP));
    }

    #[test]
    fn an_unacknowledged_event_is_sent_again_after_a_reconnect_and_state_passes_it() {
        let mut o = Outbox::default();
        o.push(event("e1"));
        o.push(event("e2"));
        assert_eq!(o.take_next().unwrap().payload, b"e1");
        o.push(state("s", "s"));
        assert_eq!(o.take_next().unwrap().payload, b"s", "state goes while e1 awaits its ack");
        assert_eq!(o.take_next(), None, "e2 waits behind e1");
        o.disconnected();
        assert_eq!(o.take_next().unwrap().payload, b"e1", "sent again");
        o.sent(7);
        assert!(!o.puback(6), "another packet's ack");
        assert!(o.puback(7));
        assert_eq!(o.take_next().unwrap().payload, b"e2");
        o.acked();
        assert!(o.is_empty());
    }
}
