//! Records the dense fixture: a private Postfix pair (INCOMING `in1`, OUTGOING `out1`) driven hard
//! by Postfix's `smtp-source`, delivering to `smtp-sink`s that play the Internet's MXes, both
//! instances writing one `maillog_file` (each record one append, so the file has the two hosts'
//! lines in the order they logged them, as a central syslog server would receive them).
//!
//! The traffic (per second, each stream one message per session and second):
//! - Internet → in1, 3 recipients delivered to mailboxes (`virtual`);
//! - Internet → in1 for forwarded addresses, expanded to 1–2 remote recipients, relayed through
//!   out1 (`orig_to=`, a hop in1 → out1);
//! - Internet → in1 to unknown users (550 at RCPT, no queue id);
//! - workstations → out1 → `mx.ok.test` (4 recipients), `mx.slow.test` (refuses with 450 in
//!   alternating windows: deferred, then delivered or expired and returned), `mx.gone.test`
//!   (550: bounced, the notification back to the sender's mailbox through in1);
//! - workstations → out1 → in1 (internal mail, 2 recipients).
//!
//! It runs in network and mount namespaces of its own: a private `/etc/hosts` gives every address
//! a name (Postfix logs `name[ip]`), and local routes make `smtp-source`, which cannot choose its
//! source address, connect to in1 from an Internet address and to out1 from a workstation's.
//! in1 has short hex queue ids, out1 long ones.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::postfix::{self, PrivatePostfix};
use crate::topology::{listeners, mailboxes};

/// The INCOMING server of the pair (`in1.example.test`).
pub const IN1: &str = "127.0.10.1";
/// The OUTGOING server of the pair (`out1.example.test`).
pub const OUT1: &str = "127.0.10.2";
/// Where mail to the Internet servers comes from, as in1 sees it.
const INTERNET_CLIENT: &str = "127.0.20.1";
/// The organisation's workstation, as out1 sees it.
const WORKSTATION: &str = "127.0.30.1";
/// The Internet's MXes: accepts everything, refuses in windows, rejects every recipient.
const MX_OK: &str = "127.0.40.1";
const MX_SLOW: &str = "127.0.40.2";
const MX_GONE: &str = "127.0.40.3";

const SMTP_SOURCE: &str = "/usr/sbin/smtp-source";
const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

/// Set in the process that runs inside the recorder's own namespaces.
const NAMESPACED: &str = "ELSE_DENSE_RECORD_NETNS";

/// How long the load runs and how long the queues may take to drain afterwards.
#[derive(Debug, Clone, Copy)]
pub struct Recording {
    pub load: Duration,
    pub drain: Duration,
    /// The length of mx.slow.test's refusing window; it then accepts for a third of it.
    pub slow_window: Duration,
}

/// One `smtp-source` stream: to which server, how many parallel sessions (each sends one message
/// a second), recipients per message and the addresses.
struct Stream {
    server: &'static str,
    sessions: u32,
    recipients: u32,
    from: &'static str,
    /// smtp-source numbers the recipients after the first: `u@example.test` gives `u@…`, `2u@…`, `3u@…`.
    to: &'static str,
    helo: &'static str,
    /// Keep going after a refusal (the unknown-user stream).
    ignore_errors: bool,
}

const STREAMS: &[Stream] = &[
    Stream {
        server: IN1,
        sessions: 12,
        recipients: 3,
        from: "news@ok.test",
        to: "u@example.test",
        helo: "mail.remote.test",
        ignore_errors: false,
    },
    Stream {
        server: IN1,
        sessions: 3,
        recipients: 3,
        from: "alerts@ok.test",
        to: "f@fwd.example.test",
        helo: "mail.remote.test",
        ignore_errors: false,
    },
    Stream {
        server: IN1,
        sessions: 1,
        recipients: 2,
        from: "spam@ok.test",
        to: "nobody@example.test",
        helo: "mail.remote.test",
        ignore_errors: true,
    },
    Stream {
        server: OUT1,
        sessions: 12,
        recipients: 4,
        from: "staff@example.test",
        to: "r@ok.test",
        helo: "ws1.example.test",
        ignore_errors: false,
    },
    Stream {
        server: OUT1,
        sessions: 3,
        recipients: 2,
        from: "staff@example.test",
        to: "r@slow.test",
        helo: "ws1.example.test",
        ignore_errors: false,
    },
    Stream {
        server: OUT1,
        sessions: 1,
        recipients: 1,
        from: "staff@example.test",
        to: "r@gone.test",
        helo: "ws1.example.test",
        ignore_errors: false,
    },
    Stream {
        server: OUT1,
        sessions: 5,
        recipients: 2,
        from: "staff@example.test",
        to: "u@example.test",
        helo: "ws1.example.test",
        ignore_errors: false,
    },
];

/// Names of the addresses, in the recorder's private `/etc/hosts`.
const HOSTS: &str = "127.0.0.1 localhost
127.0.10.1 in1.example.test in1
127.0.10.2 out1.example.test out1
127.0.20.1 mail.remote.test
127.0.30.1 ws1.example.test
127.0.40.1 mx.ok.test
127.0.40.2 mx.slow.test
127.0.40.3 mx.gone.test
";

/// Why the recorder cannot run here, if it cannot.
pub fn unavailable() -> Option<&'static str> {
    if !postfix::available() || !Path::new(SMTP_SOURCE).exists() || !Path::new(SMTP_SINK).exists() {
        return Some("needs root and Debian's postfix (smtp-source, smtp-sink)");
    }
    None
}

/// Records the pair's log into `output` (gzip). Re-runs this program inside new network and mount
/// namespaces first (`unshare`); returns there once the inner run is done.
pub fn record(output: &Path, recording: Recording) {
    if std::env::var_os(NAMESPACED).is_none() {
        let status = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec \"$0\" \"$@\"",
            ])
            .arg(std::env::current_exe().expect("this program"))
            .args(std::env::args_os().skip(1))
            .env(NAMESPACED, "1")
            .status()
            .expect("run unshare (util-linux) and ip (iproute2)");
        assert!(status.success(), "the recording failed ({status})");
        return;
    }
    let work = std::env::temp_dir().join(format!("else-dense-record-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work directory");
    private_names_and_routes(&work);
    let maillog = work.join("maillog");
    let in1 = start_incoming(&maillog);
    let out1 = start_outgoing(&maillog);
    let mut sinks = Sinks::start(recording.slow_window);
    let started = Instant::now();
    let sources: Vec<Child> = STREAMS
        .iter()
        .map(|s| start_source(s, recording.load.as_secs() as u32))
        .collect();
    eprintln!(
        "else-dense record: {} smtp-source streams, {} messages a second, for {} s",
        STREAMS.len(),
        STREAMS.iter().map(|s| s.sessions).sum::<u32>(),
        recording.load.as_secs()
    );
    let mut sources = sources;
    while sources.iter_mut().any(|c| matches!(c.try_wait(), Ok(None))) {
        sinks.tick(started.elapsed());
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "else-dense record: load done after {:.0} s, draining the queues",
        started.elapsed().as_secs_f64()
    );
    let drain_until = Instant::now() + recording.drain;
    while queued(&in1) + queued(&out1) > 0 && Instant::now() < drain_until {
        sinks.tick(started.elapsed());
        std::thread::sleep(Duration::from_millis(500));
    }
    let left = queued(&in1) + queued(&out1);
    if left > 0 {
        eprintln!("else-dense record: {left} messages still queued after the drain; they stay open in the log");
    }
    // Stop Postfix gracefully (so that postlogd writes everything) and the sinks, then keep the
    // mail lines: not the instances' own start and stop messages.
    for postfix in [&in1, &out1] {
        postfix.run(&["stop"]);
    }
    std::thread::sleep(Duration::from_secs(2));
    drop((in1, out1, sinks));
    let log = std::fs::read_to_string(&maillog).expect("the maillog");
    let kept: String = log
        .lines()
        .filter(|line| !line.contains(" postfix/postfix-script[") && !line.contains(" postfix/master["))
        .map(|line| format!("{line}\n"))
        .collect();
    write_gzip(output, &kept);
    eprintln!(
        "else-dense record: {} lines written to {} in {:.0} s",
        kept.lines().count(),
        output.display(),
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// The private `/etc/hosts` (bind-mounted in this mount namespace) and the routes that give
/// unbound clients their source address.
fn private_names_and_routes(work: &Path) {
    let hosts = work.join("hosts");
    std::fs::write(&hosts, HOSTS).expect("hosts file");
    run("mount", &["--bind", &hosts.display().to_string(), "/etc/hosts"]);
    for (server, source) in [(IN1, INTERNET_CLIENT), (OUT1, WORKSTATION)] {
        run(
            "ip",
            &[
                "route",
                "add",
                "local",
                &format!("{server}/32"),
                "dev",
                "lo",
                "src",
                source,
                "table",
                "local",
            ],
        );
    }
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?}: {status}");
}

/// Settings both servers share: names, no DNS, one log file, fast retries and a short queue
/// lifetime (so that refused mail expires within the recording).
fn common_main(name: &str, address: &str) -> String {
    format!(
        "myhostname = {name}.example.test
smtp_bind_address = {address}
smtp_dns_support_level = disabled
smtp_host_lookup = native
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 8s
maximal_queue_lifetime = 20s
bounce_queue_lifetime = 20s
default_process_limit = 200
",
    )
}

/// INCOMING: mailboxes of example.test, forwarded addresses of fwd.example.test, everything else
/// relayed through out1.
fn start_incoming(maillog: &Path) -> PrivatePostfix {
    let postfix = PrivatePostfix::prepare("else-dense-in1").log_to(maillog);
    let d = postfix.dir.display().to_string();
    std::fs::write(
        postfix.dir.join("etc/forwards"),
        "f@fwd.example.test f@ok.test\n2f@fwd.example.test 2f@ok.test, 2f@slow.test\n3f@fwd.example.test 3f@gone.test\n",
    )
    .expect("forwards");
    let main = format!(
        "{common}mynetworks = 127.0.10.0/24
{mailboxes}virtual_alias_domains = fwd.example.test
virtual_alias_maps = texthash:{d}/etc/forwards
relayhost = [out1.example.test]:25
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
",
        common = common_main("in1", IN1),
        mailboxes = mailboxes(&postfix, "example.test", &["u", "2u", "3u", "staff", "postmaster"]),
    );
    postfix.start(&main, &listeners(IN1), &[])
}

/// OUTGOING: relays the servers' and workstations' mail, example.test back to in1; long queue ids.
fn start_outgoing(maillog: &Path) -> PrivatePostfix {
    let postfix = PrivatePostfix::prepare("else-dense-out1").log_to(maillog);
    let d = postfix.dir.display().to_string();
    std::fs::write(
        postfix.dir.join("etc/transport"),
        "example.test smtp:[in1.example.test]:25
fwd.example.test smtp:[in1.example.test]:25
ok.test smtp:[mx.ok.test]:25
slow.test smtp:[mx.slow.test]:25
gone.test smtp:[mx.gone.test]:25
",
    )
    .expect("transport");
    let main = format!(
        "{common}mynetworks = 127.0.10.0/24, 127.0.30.0/24
enable_long_queue_ids = yes
transport_maps = texthash:{d}/etc/transport
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
",
        common = common_main("out1", OUT1),
    );
    postfix.start(&main, &listeners(OUT1), &[])
}

/// `smtp-source` for one stream: `sessions` parallel sessions, one message a second each, for
/// `seconds`.
fn start_source(stream: &Stream, seconds: u32) -> Child {
    let mut command = Command::new(SMTP_SOURCE);
    command
        .args(["-s", &stream.sessions.to_string()])
        .args(["-m", &(stream.sessions * seconds).to_string()])
        .args(["-r", &stream.recipients.to_string()])
        .args(["-w", "1", "-l", "2000"])
        .args(["-f", stream.from, "-t", stream.to, "-M", stream.helo]);
    if stream.ignore_errors {
        // Its refusals are the point: not worth a warning each.
        command.arg("-A").stderr(Stdio::null());
    }
    command
        .arg(format!("{}:25", stream.server))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start smtp-source")
}

/// The Internet's MXes; mx.slow.test alternates between refusing every recipient (450) for
/// `slow_window` and accepting for a third of it.
struct Sinks {
    steady: Vec<Child>,
    slow: Option<Child>,
    slow_refusing: bool,
    slow_window: Duration,
    switched_at: Duration,
}

impl Sinks {
    fn start(slow_window: Duration) -> Sinks {
        let steady = vec![
            sink(MX_OK, "mx.ok.test", &[]),
            sink(
                MX_GONE,
                "mx.gone.test",
                &["-f", "RCPT", "-B", "550 5.1.1 Recipient address rejected: User unknown"],
            ),
        ];
        let mut sinks = Sinks {
            steady,
            slow: None,
            slow_refusing: false,
            slow_window,
            switched_at: Duration::ZERO,
        };
        sinks.switch_slow(true, Duration::ZERO);
        sinks
    }

    /// Switches mx.slow.test when its window is over.
    fn tick(&mut self, elapsed: Duration) {
        let window = if self.slow_refusing {
            self.slow_window
        } else {
            self.slow_window / 3
        };
        if elapsed - self.switched_at >= window {
            self.switch_slow(!self.slow_refusing, elapsed);
        }
    }

    fn switch_slow(&mut self, refusing: bool, at: Duration) {
        if let Some(mut old) = self.slow.take() {
            stop(&mut old);
        }
        let refuse: &[&str] = &["-r", "RCPT", "-b", "450 4.2.1 Mailbox busy, try again later"];
        self.slow = Some(sink(MX_SLOW, "mx.slow.test", if refusing { refuse } else { &[] }));
        self.slow_refusing = refusing;
        self.switched_at = at;
    }
}

impl Drop for Sinks {
    fn drop(&mut self) {
        for child in self.steady.iter_mut().chain(self.slow.as_mut()) {
            stop(child);
        }
    }
}

/// One `smtp-sink` on `address:25`, as user postfix, announcing `name`.
fn sink(address: &str, name: &str, options: &[&str]) -> Child {
    let child = Command::new(SMTP_SINK)
        .args(["-u", "postfix", "-h", name])
        .args(options)
        .arg(format!("{address}:25"))
        .arg("256")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start smtp-sink");
    // Listening takes a moment; a refused connection would be a deferral of its own.
    let up = crate::rsyslogd::wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect((address, 25)).is_ok()
    });
    assert!(up, "smtp-sink did not listen on {address}:25");
    child
}

fn stop(child: &mut Child) {
    crate::sys::signal(child.id(), libc::SIGTERM);
    let _ = child.wait();
}

/// How many messages `postfix` has queued (`postqueue -j`: one JSON object a line).
fn queued(postfix: &PrivatePostfix) -> usize {
    let out = Command::new("/usr/sbin/postqueue")
        .arg("-c")
        .arg(postfix.dir.join("etc"))
        .arg("-j")
        .output()
        .expect("postqueue");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .count()
}

fn write_gzip(path: &Path, text: &str) {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("fixture directory");
    }
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    encoder.write_all(text.as_bytes()).expect("write the fixture");
    encoder.finish().expect("finish the fixture");
}

/// The default place of the fixture in the repository.
pub fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dense/pair.log.gz")
}
