//! Finding ONVIF devices on the LAN: a WS-Discovery Probe sent by UDP multicast to
//! 239.255.255.250:3702 on every IPv4 interface, then a bounded wait for the ProbeMatches
//! devices answer with (unicast, to our socket).
//!
//! Bounds (see `docs/design/onvif.md`, "Discovery"): the wait ([`DEFAULT_WAIT`], at most
//! [`MAX_WAIT`]), one reused 64 KiB receive buffer (a datagram cannot be larger), at most
//! [`MAX_DATAGRAMS`] datagrams read, at most [`MAX_DEVICES`] devices kept (more are counted,
//! not stored), and the per-device limits of [`crate::onvif::wsd`]. A flood of replies thus
//! costs bounded memory and at most the wait in time.

use crate::error::{Error, Result};
use crate::onvif::wsd::{self, ProbeMatch};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// The WS-Discovery multicast group and port.
pub const MULTICAST: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), 3702);
/// How long replies are awaited by default: cameras answer within a second; the spec lets
/// them wait up to 500 ms (`APP_MAX_DELAY`) before answering.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);
/// The longest wait a caller may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// Most devices kept from one probe (a config holds at most 32 cameras).
pub const MAX_DEVICES: usize = 64;
/// Most datagrams read during one probe; the rest are left to the kernel to drop.
pub const MAX_DATAGRAMS: usize = 4096;
/// Most interfaces the probe is sent on.
pub const MAX_INTERFACES: usize = 16;
/// The probe is sent again this long after the first time: UDP may lose either copy.
const RESEND_AFTER: Duration = Duration::from_millis(500);

/// What to probe and how long to wait.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// How long to wait for replies (capped at [`MAX_WAIT`]).
    pub wait: Duration,
    /// Where the probe goes: [`MULTICAST`] on the LAN; a unicast address sends it there
    /// only (a test seam, and a way to ask one known device).
    pub target: SocketAddrV4,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions { wait: DEFAULT_WAIT, target: MULTICAST }
    }
}

/// One device that answered, its replies merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The endpoint reference (`urn:uuid:...`), or its first XAddr if it sent none.
    pub endpoint: String,
    /// Device service addresses, in the order first seen.
    pub xaddrs: Vec<String>,
    /// Scope URIs.
    pub scopes: Vec<String>,
    /// Types it claims.
    pub types: Vec<String>,
    /// Where its first reply came from.
    pub from: IpAddr,
}

impl Device {
    /// The name scope (`onvif://www.onvif.org/name/...`), decoded.
    pub fn name(&self) -> Option<String> {
        wsd::scope_value(&self.scopes, "name")
    }

    /// The hardware scope (the model, on most cameras).
    pub fn hardware(&self) -> Option<String> {
        wsd::scope_value(&self.scopes, "hardware")
    }

    /// The location scope.
    pub fn location(&self) -> Option<String> {
        wsd::scope_value(&self.scopes, "location")
    }

    /// The XAddr to talk to: one whose host is the address the reply came from, else the
    /// first IPv4 one, else the first (link-local IPv6 XAddrs are unusable without a zone).
    pub fn best_xaddr(&self) -> &str {
        let host = |a: &str| url::Url::parse(a).ok().and_then(|u| u.host_str().map(str::to_owned));
        let from = self.from.to_string();
        self.xaddrs
            .iter()
            .find(|a| host(a).as_deref() == Some(from.as_str()))
            .or_else(|| self.xaddrs.iter().find(|a| host(a).is_some_and(|h| h.parse::<Ipv4Addr>().is_ok())))
            .or(self.xaddrs.first())
            .map_or("", String::as_str)
    }

    fn merge(&mut self, m: ProbeMatch) {
        let add = |v: &mut Vec<String>, new: Vec<String>, max: usize| {
            for s in new {
                if v.len() < max && !v.contains(&s) {
                    v.push(s);
                }
            }
        };
        add(&mut self.xaddrs, m.xaddrs, wsd::MAX_XADDRS);
        add(&mut self.scopes, m.scopes, wsd::MAX_SCOPES);
        add(&mut self.types, m.types, wsd::MAX_TYPES);
    }
}

/// What one probe found.
#[derive(Clone, Debug, Default)]
pub struct Found {
    /// The devices, in the order they first answered (at most [`MAX_DEVICES`]).
    pub devices: Vec<Device>,
    /// Devices that answered after [`MAX_DEVICES`] were kept.
    pub ignored_devices: usize,
    /// Datagrams that were not a readable ProbeMatches.
    pub bad_replies: usize,
    /// Interfaces the probe went out on (empty for a unicast target).
    pub interfaces: Vec<Ipv4Addr>,
}

impl Found {
    fn add(&mut self, m: ProbeMatch, from: IpAddr) {
        if let Some(d) = self.devices.iter_mut().find(|d| d.endpoint == m.endpoint) {
            d.merge(m);
        } else if self.devices.len() < MAX_DEVICES {
            let mut d = Device { endpoint: m.endpoint.clone(), xaddrs: vec![], scopes: vec![], types: vec![], from };
            d.merge(m);
            self.devices.push(d);
        } else {
            self.ignored_devices += 1;
        }
    }
}

/// Sends the probes and collects replies for `opts.wait`. Fails only when nothing could be
/// sent at all (no socket, no interface took the probe).
pub fn probe(opts: &ProbeOptions) -> Result<Found> {
    let wait = opts.wait.min(MAX_WAIT);
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .map_err(|e| Error::io("cannot open a UDP socket for WS-Discovery", e))?;
    let mut found = Found::default();
    let probes: Vec<String> =
        [wsd::TYPE_NVT, wsd::TYPE_DEVICE].iter().map(|t| wsd::probe(&wsd::new_message_id(), *t)).collect();
    let multicast = opts.target.ip().is_multicast();
    if multicast {
        let _ = sock.set_multicast_ttl_v4(1);
        found.interfaces = multicast_interfaces();
    }
    let sent = send_all(&sock, opts.target, &found.interfaces, &probes)?;
    log::debug!("WS-Discovery: probe sent to {} on {sent} interface(s)", opts.target);
    let start = Instant::now();
    let mut resent = false;
    let mut buf = vec![0u8; 65_536];
    let mut datagrams = 0;
    while datagrams < MAX_DATAGRAMS {
        let elapsed = start.elapsed();
        if elapsed >= wait {
            break;
        }
        if !resent && elapsed >= RESEND_AFTER {
            resent = true;
            let _ = send_all(&sock, opts.target, &found.interfaces, &probes);
        }
        let next = if resent { wait } else { RESEND_AFTER.min(wait) };
        let _ = sock.set_read_timeout(Some(next.saturating_sub(elapsed).max(Duration::from_millis(1))));
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // Other errors (an ICMP error reported on the socket) count against the datagram
            // budget, so a socket that keeps failing cannot spin until the wait ends.
            Err(_) => {
                datagrams += 1;
                continue;
            }
        };
        datagrams += 1;
        match wsd::parse_probe_matches(&String::from_utf8_lossy(&buf[..n])) {
            Ok(matches) => matches.into_iter().for_each(|m| found.add(m, from.ip())),
            Err(e) => {
                found.bad_replies += 1;
                log::debug!("WS-Discovery: unreadable reply from {}: {e}", from.ip());
            }
        }
    }
    Ok(found)
}

/// Sends every probe to `target`, once per interface for multicast (or once through the
/// routing table when no interface is known). Returns how many interfaces took it.
fn send_all(sock: &UdpSocket, target: SocketAddrV4, interfaces: &[Ipv4Addr], probes: &[String]) -> Result<usize> {
    let mut ok = 0;
    let mut last_err = None;
    let routes: Vec<Option<Ipv4Addr>> =
        if interfaces.is_empty() { vec![None] } else { interfaces.iter().copied().map(Some).collect() };
    for ifaddr in routes {
        if let Some(a) = ifaddr {
            if let Err(e) = set_multicast_if(sock, a) {
                last_err = Some(e);
                continue;
            }
        }
        let mut sent = false;
        for p in probes {
            match sock.send_to(p.as_bytes(), SocketAddr::V4(target)) {
                Ok(_) => sent = true,
                Err(e) => last_err = Some(e),
            }
        }
        ok += sent as usize;
    }
    match (ok, last_err) {
        (0, Some(e)) => Err(crate::err!(Io, "cannot send the WS-Discovery probe to {target}").with_source(e)),
        _ => Ok(ok),
    }
}

fn set_multicast_if(sock: &UdpSocket, addr: Ipv4Addr) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let a = libc::in_addr { s_addr: u32::from(addr).to_be() };
    // SAFETY: a valid socket and a correctly sized in_addr.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            (&a as *const libc::in_addr).cast(),
            std::mem::size_of::<libc::in_addr>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The IPv4 addresses of interfaces that are up, not loopback, and multicast-capable (at
/// most [`MAX_INTERFACES`]). Empty when none is found (the probe then follows the routes).
pub fn multicast_interfaces() -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free below; we only read it in between.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return out;
    }
    let mut p = ifap;
    while !p.is_null() && out.len() < MAX_INTERFACES {
        // SAFETY: p is a node of the list getifaddrs returned.
        let ifa = unsafe { &*p };
        p = ifa.ifa_next;
        let flags = ifa.ifa_flags;
        let wanted = flags & libc::IFF_UP as u32 != 0
            && flags & libc::IFF_MULTICAST as u32 != 0
            && flags & libc::IFF_LOOPBACK as u32 == 0;
        if !wanted || ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null; its family says which sockaddr it is.
        if i32::from(unsafe { (*ifa.ifa_addr).sa_family }) != libc::AF_INET {
            continue;
        }
        // SAFETY: an AF_INET address is a sockaddr_in.
        let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
        let a = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        if !out.contains(&a) {
            out.push(a);
        }
    }
    // SAFETY: ifap came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(ifap) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(endpoint: &str, xaddr: &str, scope: &str) -> String {
        format!(
            r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><e:Body><d:ProbeMatches><d:ProbeMatch><a:EndpointReference><a:Address>{endpoint}</a:Address></a:EndpointReference><d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>{scope}</d:Scopes><d:XAddrs>{xaddr}</d:XAddrs></d:ProbeMatch></d:ProbeMatches></e:Body></e:Envelope>"#
        )
    }

    /// A responder on 127.0.0.1 that answers the first probe with `replies`.
    fn responder(replies: Vec<Vec<u8>>) -> (SocketAddrV4, std::thread::JoinHandle<usize>) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(addr) = s.local_addr().unwrap() else { unreachable!() };
        // Bounded, so a probe that never arrives fails the test instead of hanging it (one
        // run waited 11 minutes on a loaded machine).
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let h = std::thread::spawn(move || {
            let mut buf = [0u8; 65_536];
            let (n, from) = s.recv_from(&mut buf).expect("the probe arrives within 20 s");
            assert!(String::from_utf8_lossy(&buf[..n]).contains("discovery/Probe"));
            let mut sent = 0;
            for (i, r) in replies.iter().enumerate() {
                sent += s.send_to(r, from).is_ok() as usize;
                if i % 16 == 15 {
                    // Paced, so the receiver's socket buffer is not what drops them.
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            sent
        });
        (addr, h)
    }

    #[test]
    fn merges_duplicates_and_keeps_the_first_address() {
        let a = reply("urn:uuid:a", "http://10.1.1.1/onvif/device_service", "onvif://www.onvif.org/name/A");
        let a2 = reply("urn:uuid:a", "http://10.1.1.1/onvif/device_service http://10.2.2.2/x", "onvif://x/y");
        let b = reply("urn:uuid:b", "http://[fe80::1]/d http://10.1.1.2/onvif/device_service", "");
        let (target, h) = responder(vec![a.clone().into(), a.into(), a2.into(), b.into()]);
        let found = probe(&ProbeOptions { wait: Duration::from_millis(700), target }).unwrap();
        assert_eq!(h.join().unwrap(), 4);
        assert_eq!(found.devices.len(), 2, "{found:?}");
        let a = &found.devices[0];
        assert_eq!(a.xaddrs, ["http://10.1.1.1/onvif/device_service", "http://10.2.2.2/x"]);
        assert_eq!(a.name().as_deref(), Some("A"));
        assert_eq!(a.scopes.len(), 2);
        assert_eq!(found.devices[1].best_xaddr(), "http://10.1.1.2/onvif/device_service");
    }

    /// A hostile LAN: a datagram of the largest size, garbage, XML that is not a reply, deep
    /// nesting, and a thousand devices. Memory stays bounded, nothing panics, the wait holds.
    #[test]
    fn survives_hostile_replies() {
        let mut replies: Vec<Vec<u8>> = vec![
            vec![b'<'; 65_507],
            b"\xff\xfe garbage".to_vec(),
            b"<a><b></a>".to_vec(),
            format!("{}{}", "<x>".repeat(10_000), "</x>".repeat(10_000)).into_bytes(),
            reply(
                "urn:uuid:z",
                &(0..1500).map(|i| format!("http://10.0.{}.{}/ ", i / 256, i % 256)).collect::<String>(),
                &(0..1500).map(|i| format!("onvif://s{i} ")).collect::<String>(),
            )
            .into_bytes(),
        ];
        replies.extend((0..1000).map(|i| reply(&format!("urn:uuid:{i}"), "http://10.9.9.9/d", "").into_bytes()));
        let (target, h) = responder(replies);
        let t0 = Instant::now();
        let found = probe(&ProbeOptions { wait: Duration::from_millis(1500), target }).unwrap();
        assert!(t0.elapsed() < Duration::from_secs(3), "the wait is bounded: {:?}", t0.elapsed());
        let sent = h.join().unwrap();
        assert!(sent > 900, "the responder sent {sent}");
        assert_eq!(found.devices.len(), MAX_DEVICES);
        assert!(found.bad_replies >= 3, "{}", found.bad_replies);
        let z = &found.devices[0];
        assert_eq!(z.endpoint, "urn:uuid:z");
        assert_eq!((z.xaddrs.len(), z.scopes.len()), (wsd::MAX_XADDRS, wsd::MAX_SCOPES));
        // A slow receiver (qemu-user) lets the kernel drop some; those it read were counted.
        assert!(found.ignored_devices > 0, "{}", found.ignored_devices);
    }

    #[test]
    fn lists_interfaces_without_loopback() {
        assert!(!multicast_interfaces().iter().any(|a| a.is_loopback()));
    }
}
