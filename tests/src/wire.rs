//! Bytes on the wire, counted exactly: a TCP relay on the loopback between a sender and a
//! receiver that counts the TCP payload each way (what the log transport costs a WAN link, less
//! the TCP/IP headers).
//!
//! A relay accepts connections the receiver would refuse: while the receiver is down, a sender
//! connects, writes into the relay and only then sees the connection close. Tests of outages
//! connect the two daemons directly; the relay is for measuring.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Default)]
struct Counts {
    to_receiver: AtomicU64,
    to_sender: AtomicU64,
    connections: AtomicU64,
}

/// A relay from its own port on 127.0.0.1 to the receiver's port; stops accepting when dropped
/// (connections already relayed end with the daemons').
pub struct CountingRelay {
    port: u16,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl CountingRelay {
    pub fn start(receiver_port: u16) -> CountingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        listener.set_nonblocking(true).expect("non-blocking accept");
        let port = listener.local_addr().expect("relay address").port();
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (counts, stop) = (Arc::clone(&counts), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((sender, _)) => {
                            let counts = Arc::clone(&counts);
                            std::thread::spawn(move || relay(sender, receiver_port, &counts));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        CountingRelay {
            port,
            counts,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// Where the sender connects instead of the receiver.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Payload bytes from the sender to the receiver so far.
    pub fn to_receiver(&self) -> u64 {
        self.counts.to_receiver.load(Ordering::Relaxed)
    }

    /// Payload bytes from the receiver back to the sender (RELP's acknowledgements, TLS).
    pub fn to_sender(&self) -> u64 {
        self.counts.to_sender.load(Ordering::Relaxed)
    }

    /// Connections relayed so far.
    pub fn connections(&self) -> u64 {
        self.counts.connections.load(Ordering::Relaxed)
    }
}

impl Drop for CountingRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// One connection: the receiver's side is opened first; a refusal closes the sender's.
fn relay(sender: TcpStream, receiver_port: u16, counts: &Counts) {
    let Ok(receiver) = TcpStream::connect(("127.0.0.1", receiver_port)) else {
        return;
    };
    counts.connections.fetch_add(1, Ordering::Relaxed);
    let _ = sender.set_nonblocking(false);
    let (Ok(sender_reader), Ok(receiver_writer)) = (sender.try_clone(), receiver.try_clone()) else {
        return;
    };
    std::thread::scope(|scope| {
        scope.spawn(|| pump(sender_reader, receiver_writer, &counts.to_receiver));
        pump(receiver, sender, &counts.to_sender);
    });
}

/// Copies until either side closes, counting what was written; then closes both sockets, which
/// ends the other direction's copy too: a close travels on as it would without the relay.
fn pump(mut from: TcpStream, mut to: TcpStream, counter: &AtomicU64) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
                counter.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
