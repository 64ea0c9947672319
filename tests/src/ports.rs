//! Ports for the servers a test starts (PostgreSQL, rsyslogd's inputs, snmpd, sshd, elsed).
//!
//! The usual trick, binding port 0 and closing it, hands out a port of the kernel's ephemeral
//! range, the same range every outgoing connection takes its local port from: a client of
//! PostgreSQL or of RELP elsewhere in the run can hold that port by the time the server binds
//! it, and the server then fails to start. Ports below that range are never given to outgoing
//! connections, so the ports here come from below it, each handed out once per process.

use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// The range handed out: below Linux's default ephemeral range (32768–60999) and above the
/// ports of well-known services.
const FIRST: u32 = 20_000;
const COUNT: u32 = 12_000;

/// A port of 127.0.0.1 free for both TCP and UDP now, never handed out before by this process.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    // Each process starts at its own offset: test binaries run at the same time (a bench beside
    // a test run) rarely try the same ports.
    let start = std::process::id().wrapping_mul(7_919) % COUNT;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 from {FIRST} to {}", FIRST + COUNT - 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_outside_the_ephemeral_range_and_never_handed_out_twice() {
        let ephemeral_low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .expect("the ephemeral port range")
            .split_whitespace()
            .next()
            .and_then(|low| low.parse().ok())
            .expect("its lower bound");
        let ports: Vec<u16> = (0..500).map(|_| free_port()).collect();
        assert!(ports.iter().all(|&p| u32::from(p) < ephemeral_low), "{ports:?}");
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
        // What one of them is given to can bind it.
        TcpListener::bind(("127.0.0.1", ports[0])).expect("the port is free");
    }
}
