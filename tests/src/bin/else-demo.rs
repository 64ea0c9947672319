//! `else-demo`: the three-server deployment of the end-to-end test ([`else_tests::topology`]),
//! kept running with a trickle of mail, for `make demo`: INCOMING and OUTGOING Postfix forwarding
//! their logs over RELP to rsyslogd + omelse, GreyLSE and the NDR collector, a Postfix that plays
//! the Internet. Every few seconds one message of a kind a mail administrator tracks: inbound
//! (greylisted, then retried), rejected (unknown user, blocked client), outbound delivered,
//! bounced, deferred (while the remote mailbox is busy) then delivered, internal to internal.
//! snmpd with else-pfagent runs on both hosts, polled by elsed. Stops everything on SIGINT or
//! SIGTERM.

#![deny(unsafe_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use else_tests::topology::{self, swaks, ThreeServers, BLOCKED_CLIENT, IN1, OUT1};
use else_tests::{snmpd, sys};

#[derive(Parser)]
#[command(about = "Runs ELSE's three-server demo deployment with a trickle of mail (needs root)")]
struct Args {
    /// The ELSE database (migrated by the demo if needed).
    #[arg(long)]
    database_url: String,
    /// Where the ELSE server's configuration, certificates and logs go.
    #[arg(long)]
    dir: PathBuf,
    /// Seconds between two messages.
    #[arg(long, default_value_t = 3)]
    interval: u64,
    /// GreyLSE's delay in seconds (greylisted mail is retried after it).
    #[arg(long, default_value_t = 30)]
    greylist_delay: u64,
    /// Seconds the remote mailbox `later@remote.test` stays busy (450), then accepts as long.
    #[arg(long, default_value_t = 120)]
    busy_period: u64,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// One kind of message of the trickle.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Inbound,
    UnknownUser,
    BlockedClient,
    Outbound,
    Bounce,
    Deferred,
    Internal,
}

const ROTATION: [Kind; 10] = [
    Kind::Inbound,
    Kind::Outbound,
    Kind::Internal,
    Kind::Inbound,
    Kind::UnknownUser,
    Kind::Outbound,
    Kind::Deferred,
    Kind::BlockedClient,
    Kind::Inbound,
    Kind::Bounce,
];

/// A message to send: server, client address, sender, recipient, Message-ID.
struct Envelope {
    server: &'static str,
    client: String,
    from: String,
    to: String,
    message_id: String,
}

impl Envelope {
    /// The `n`th message of the trickle, of `kind`; senders, clients and recipients vary with `n`.
    fn new(kind: Kind, n: u64) -> Envelope {
        let local = ["alice", "bob"][(n % 2) as usize];
        let remote_sender = format!("user{}@sender{}.test", n % 7, n % 5);
        let internet_client = format!("127.0.20.{}", 1 + n % 40);
        let workstation = format!("127.0.30.{}", 1 + n % 10);
        let (server, client, from, to) = match kind {
            Kind::Inbound => (IN1, internet_client, remote_sender, format!("{local}@example.test")),
            Kind::UnknownUser => (
                IN1,
                internet_client,
                remote_sender,
                format!("nobody{}@example.test", n % 3),
            ),
            Kind::BlockedClient => (
                IN1,
                BLOCKED_CLIENT.to_string(),
                remote_sender,
                format!("{local}@example.test"),
            ),
            Kind::Outbound => (
                OUT1,
                workstation,
                format!("{local}@example.test"),
                "dave@remote.test".into(),
            ),
            Kind::Bounce => (
                OUT1,
                workstation,
                format!("{local}@example.test"),
                "nobody@remote.test".into(),
            ),
            Kind::Deferred => (
                OUT1,
                workstation,
                format!("{local}@example.test"),
                "later@remote.test".into(),
            ),
            Kind::Internal => (
                OUT1,
                workstation,
                "alice@example.test".into(),
                "bob@example.test".into(),
            ),
        };
        Envelope {
            server,
            client,
            from,
            to,
            message_id: format!("demo-{n}-{kind:?}@else.demo").to_lowercase(),
        }
    }

    /// Sends it; says whether the server accepted it, and prints what happened.
    fn send(&self) -> bool {
        let sent = swaks(self.server, &self.client, &self.from, &self.to, &self.message_id);
        let verdict = if sent.accepted {
            "accepted".to_string()
        } else {
            last_server_reply(&sent.transcript)
        };
        println!(
            "{} → {} via {}: <{}> {verdict}",
            self.from, self.to, self.server, self.message_id
        );
        sent.accepted
    }
}

/// The server's last reply in a swaks transcript (lines starting with `<~` or `<**`).
fn last_server_reply(transcript: &str) -> String {
    transcript
        .lines()
        .rev()
        .find(|line| line.starts_with("<**") || line.starts_with("<~*") || line.starts_with(" <**"))
        .map(|line| line.trim_start_matches(['<', '*', '~', ' ']).to_string())
        .unwrap_or_else(|| "refused".to_string())
}

fn main() {
    let args = Args::parse();
    if let Some(why) = topology::unavailable() {
        eprintln!("else-demo: {why}");
        std::process::exit(2);
    }
    sys::on_signal(libc::SIGINT, request_stop);
    sys::on_signal(libc::SIGTERM, request_stop);
    let fleet = ThreeServers::start(&args.dir, &args.database_url, args.greylist_delay);
    // Queue counts on the servers' pages: snmpd with else-pfagent on both hosts, polled.
    let _snmp = std::path::Path::new(snmpd::SNMPD).exists().then(|| {
        let snmp = fleet.start_snmp();
        fleet.register_snmp_agents(&snmp);
        snmp
    });
    println!(
        "else-demo: INCOMING in1 on {IN1}:25, OUTGOING out1 on {OUT1}:25, GreyLSE on 127.0.0.1:{}, \
         NDR collector on 127.0.0.1:{}, rsyslogd (RELP) on 127.0.0.1:{} (in1) and :{} (out1), snmpd on \
         both; one message every {} s; configuration {}",
        fleet.ports.policy,
        fleet.ports.ndr,
        fleet.ports.relp[0].1,
        fleet.ports.relp[1].1,
        args.interval,
        fleet.config.display()
    );

    let mut retries: Vec<(Instant, Envelope)> = Vec::new();
    let mut busy = true;
    let mut busy_since = Instant::now();
    let mut next = Instant::now();
    let mut n: u64 = 0;
    while !STOP.load(Ordering::SeqCst) {
        if busy_since.elapsed() >= Duration::from_secs(args.busy_period) {
            busy = !busy;
            busy_since = Instant::now();
            fleet.set_remote_busy(busy);
            println!(
                "else-demo: later@remote.test is now {}",
                if busy { "busy (450)" } else { "accepting" }
            );
        }
        // Greylisted mail comes back after the delay, as a real sender's queue would retry it.
        let (due, waiting): (Vec<_>, Vec<_>) = retries.drain(..).partition(|(at, _)| *at <= Instant::now());
        retries = waiting;
        for (_, envelope) in due {
            envelope.send();
        }
        if Instant::now() >= next {
            let kind = ROTATION[(n % ROTATION.len() as u64) as usize];
            let envelope = Envelope::new(kind, n);
            // Mail from the Internet is greylisted at first, whether the recipient exists or not.
            if !envelope.send() && matches!(kind, Kind::Inbound | Kind::UnknownUser) {
                retries.push((Instant::now() + Duration::from_secs(args.greylist_delay + 1), envelope));
            }
            n += 1;
            next = Instant::now() + Duration::from_secs(args.interval);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("else-demo: stopping the mail servers and the ELSE server's daemons");
    drop(fleet);
}
