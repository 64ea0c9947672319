//! GreyLSE against a real PostgreSQL (the else-tests harness): decisions with an injected
//! clock, shared state between two "MX", auto-whitelists, static lists, fail-open, cleanup, and
//! the protocol over real TCP and unix sockets.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use else_tests::PgCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::policy::{ConnState, Policy};
use super::protocol::Request;
use super::store::{self, StaticList};
use super::*;

/// A clock the test moves by hand.
pub(crate) struct ManualClock(AtomicI64);

impl ManualClock {
    pub(crate) fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(1_764_000_000)))
    }
    pub(crate) fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A fresh migrated database on the shared test cluster.
pub(crate) async fn database() -> String {
    let url = PgCluster::shared().create_database().await;
    migrate(&url).await;
    url
}

async fn migrate(url: &str) {
    let mut client = omelse::store::connect(url).await.unwrap();
    omelse::store::migrate(&mut client).await.unwrap();
}

pub(crate) fn config(hostname: &str) -> GreylistConfig {
    GreylistConfig {
        hostname: hostname.into(),
        awl_sender_passes: 0,
        ..Default::default()
    }
}

pub(crate) async fn service(url: &str, cfg: GreylistConfig, clock: Arc<dyn Clock>) -> Arc<Policy> {
    let pool = crate::db::pool(
        &crate::db::Target::url(url),
        "elsed-test",
        4,
        crate::db::Commit::Asynchronous,
    )
    .unwrap();
    start(cfg, pool, clock).await
}

fn request(client: &str, sender: &str, recipient: &str) -> Request {
    Request {
        request: Some("smtpd_access_policy".into()),
        protocol_state: Some("RCPT".into()),
        client_address: Some(client.into()),
        client_name: Some("unknown".into()),
        reverse_client_name: Some("unknown".into()),
        sender: Some(sender.into()),
        recipient: Some(recipient.into()),
        instance: None,
        queue_id: None,
        etrn_domain: Some(String::new()),
    }
}

pub(crate) async fn ask(policy: &Policy, client: &str, sender: &str, recipient: &str) -> String {
    policy
        .decide(&request(client, sender, recipient), &mut ConnState::default())
        .await
}

pub(crate) fn is_defer(reply: &str) -> bool {
    reply.starts_with("DEFER_IF_PERMIT 4.2.0 Greylisted by GreyLSE")
}

/// Waits until the decisions log holds `n` rows (the writer is asynchronous) and returns the
/// `(action, reason)` pairs in time order.
pub(crate) async fn decisions(url: &str, n: usize) -> Vec<(String, String)> {
    let client = omelse::store::connect(url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = client
            .query("SELECT action, reason FROM greylist_decisions ORDER BY ts, action", &[])
            .await
            .unwrap();
        if rows.len() >= n || Instant::now() > deadline {
            return rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn first_attempt_deferred_early_retry_deferred_retry_after_delay_passes() {
    let url = database().await;
    let clock = ManualClock::new();
    let policy = service(&url, config("mx1.example"), clock.clone()).await;
    let (client, sender, rcpt) = ("192.0.2.10", "alice@sender.example", "bob@rcpt.example");

    let first = ask(&policy, client, sender, rcpt).await;
    assert!(is_defer(&first), "{first}");
    clock.advance(120);
    let early = ask(&policy, client, sender, rcpt).await;
    assert!(is_defer(&early), "{early}");
    clock.advance(180);
    let pass = ask(&policy, client, sender, rcpt).await;
    let date = jiff::Timestamp::from_second(clock.now())
        .unwrap()
        .strftime("%a, %d %b %Y %H:%M:%S +0000")
        .to_string();
    assert_eq!(
        pass,
        format!("PREPEND X-Greylist: delayed 300 seconds by GreyLSE at mx1.example; {date}")
    );
    // Later messages of the triplet pass without a header.
    clock.advance(86_400);
    assert_eq!(ask(&policy, client, sender, rcpt).await, "DUNNO");
    // Another recipient is another triplet.
    assert!(is_defer(&ask(&policy, client, sender, "carol@rcpt.example").await));

    let log = decisions(&url, 5).await;
    let pairs: Vec<(&str, &str)> = log.iter().map(|(a, r)| (a.as_str(), r.as_str())).collect();
    assert_eq!(
        pairs,
        [
            ("greylist", "new"),
            ("greylist", "early-retry"),
            ("pass", "triplet passed"),
            ("greylist", "new"),
            ("pass", "triplet found"),
        ]
    );
    let db = omelse::store::connect(&url).await.unwrap();
    let row = db
        .query_one(
            "SELECT delay_secs, client_address::text, client_net, mx FROM greylist_decisions
             WHERE reason = 'triplet passed'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<i32>>(0), Some(300));
    assert_eq!(row.get::<_, String>(1), "192.0.2.10/32");
    assert_eq!(row.get::<_, String>(2), "192.0.2.0/24");
    assert_eq!(row.get::<_, String>(3), "mx1.example");
}

#[tokio::test]
async fn retry_window_and_max_age_restart_greylisting() {
    let url = database().await;
    let clock = ManualClock::new();
    let policy = service(&url, config("mx"), clock.clone()).await;
    let t = ("192.0.2.10", "a@s.example", "b@r.example");
    assert!(is_defer(&ask(&policy, t.0, t.1, t.2).await));
    // The first retry comes after the 2-day retry window: greylisted anew.
    clock.advance(2 * 86_400 + 1);
    assert!(is_defer(&ask(&policy, t.0, t.1, t.2).await));
    clock.advance(300);
    assert!(ask(&policy, t.0, t.1, t.2).await.starts_with("PREPEND "));
    // Unseen for longer than the 35-day max age: forgotten.
    clock.advance(35 * 86_400 + 1);
    assert!(is_defer(&ask(&policy, t.0, t.1, t.2).await));
}

#[tokio::test]
async fn two_mx_share_one_greylist() {
    let url = database().await;
    let clock = ManualClock::new();
    let mx1 = service(&url, config("mx1.example"), clock.clone()).await;
    let mx2 = service(&url, config("mx2.example"), clock.clone()).await;
    let (sender, rcpt) = ("news@sender.example", "bob@rcpt.example");
    assert!(is_defer(&ask(&mx1, "198.51.100.7", sender, rcpt).await));
    clock.advance(301);
    // The retry lands on the other MX, from another host of the sender's /24 pool.
    let pass = ask(&mx2, "198.51.100.200", sender, rcpt).await;
    assert!(
        pass.starts_with("PREPEND X-Greylist: delayed 301 seconds by GreyLSE at mx2.example; "),
        "{pass}"
    );
    assert_eq!(ask(&mx1, "198.51.100.8", sender, rcpt).await, "DUNNO");
    // Another /24 is another client.
    assert!(is_defer(&ask(&mx1, "198.51.101.7", sender, rcpt).await));
    // IPv6 clients are grouped by /64.
    assert!(is_defer(&ask(&mx1, "2001:db8:1:2::10", sender, rcpt).await));
    clock.advance(301);
    assert!(ask(&mx2, "2001:db8:1:2:ffff::1", sender, rcpt)
        .await
        .starts_with("PREPEND "));
    assert!(is_defer(&ask(&mx2, "2001:db8:1:3::10", sender, rcpt).await));
}

#[tokio::test]
async fn per_message_senders_are_one_triplet() {
    let url = database().await;
    let clock = ManualClock::new();
    let policy = service(&url, config("mx"), clock.clone()).await;
    let client = "203.0.113.5";
    let first = "bounce-mc.us5_47654921.1447481-bob=rcpt.example@mail123.list.example";
    let retry = "bounce-mc.us5_47654921.1447999-bob=rcpt.example@mail123.list.example";
    assert!(is_defer(&ask(&policy, client, first, "bob@rcpt.example").await));
    clock.advance(400);
    assert!(ask(&policy, client, retry, "bob@rcpt.example")
        .await
        .starts_with("PREPEND "));
    let srs1 = "SRS0=abcd=T1=orig.example=carol@fwd.example";
    let srs2 = "SRS0=wxyz=T2=orig.example=carol@fwd.example";
    assert!(is_defer(&ask(&policy, client, srs1, "bob@rcpt.example").await));
    clock.advance(400);
    assert!(ask(&policy, client, srs2, "bob@rcpt.example")
        .await
        .starts_with("PREPEND "));
}

#[tokio::test]
async fn two_level_auto_whitelist() {
    let url = database().await;
    let clock = ManualClock::new();
    let cfg = GreylistConfig {
        awl_sender_passes: 2,
        awl_domain_senders: 2,
        ..config("mx")
    };
    let policy = service(&url, cfg, clock.clone()).await;
    let net = "192.0.2.";
    // One greylisting round: deferred, then passes after the delay.
    let round = |sender: &'static str, rcpt: &'static str, host: u8| {
        let policy = policy.clone();
        let clock = clock.clone();
        async move {
            let client = format!("{net}{host}");
            assert!(is_defer(&ask(&policy, &client, sender, rcpt).await));
            clock.advance(300);
            assert!(ask(&policy, &client, sender, rcpt).await.starts_with("PREPEND "));
        }
    };
    round("a@dom.example", "r1@rcpt.example", 1).await;
    // One pass is not enough for 2, and a second within the hour is not counted.
    round("a@dom.example", "r2@rcpt.example", 2).await;
    clock.advance(3_600);
    round("a@dom.example", "r3@rcpt.example", 3).await;
    // Two counted passes: the sender is trusted from the whole /24, for any recipient.
    assert_eq!(
        ask(&policy, "192.0.2.99", "a@dom.example", "new@rcpt.example").await,
        "DUNNO"
    );
    // Not from another network, nor another sender of the domain yet.
    assert!(is_defer(
        &ask(&policy, "192.0.3.1", "a@dom.example", "new@rcpt.example").await
    ));
    assert!(is_defer(
        &ask(&policy, "192.0.2.1", "c@dom.example", "new@rcpt.example").await
    ));
    // A second trusted sender of the domain makes the domain trusted from the network.
    round("b@dom.example", "r1@rcpt.example", 4).await;
    clock.advance(3_600);
    round("b@dom.example", "r2@rcpt.example", 5).await;
    assert_eq!(
        ask(&policy, "192.0.2.50", "z@dom.example", "x@rcpt.example").await,
        "DUNNO"
    );
    assert!(is_defer(
        &ask(&policy, "192.0.2.50", "z@other.example", "x@rcpt.example").await
    ));

    let log = decisions(&url, 17).await;
    let awl: Vec<&str> = log
        .iter()
        .filter(|(a, _)| a == "awl")
        .map(|(_, r)| r.as_str())
        .collect();
    assert_eq!(awl, ["sender awl", "domain awl"]);
}

#[tokio::test]
async fn static_whitelists_and_domain_opt_out_and_opt_in() {
    let url = database().await;
    let clock = ManualClock::new();
    let cfg = GreylistConfig {
        whitelist_clients: vec!["mail*.trusted.example".into()],
        ..config("mx")
    };
    let policy = service(&url, cfg, clock.clone()).await;
    let db = omelse::store::connect(&url).await.unwrap();
    let mut ids = Vec::new();
    for (list, pattern) in [
        (StaticList::Clients, "10.20.0.0/16"),
        (StaticList::Clients, "2001:db8:aa::/48"),
        (StaticList::Clients, "partner.example"),
        (StaticList::Recipients, "postmaster@"),
        (StaticList::Recipients, "vip@rcpt.example"),
    ] {
        let (id, _) = store::add_to_whitelist(&db, list, pattern, "test", "admin")
            .await
            .unwrap()
            .unwrap();
        ids.push(id);
    }
    assert_eq!(
        store::add_to_whitelist(&db, StaticList::Clients, "10.20.0.0/16", "again", "admin")
            .await
            .unwrap(),
        None,
        "listed already"
    );
    store::add_domain_policy(&db, "noisy.example", "optout", "", "admin")
        .await
        .unwrap()
        .unwrap();
    // Until the lists are re-read, the database entries do not apply.
    assert!(is_defer(
        &ask(&policy, "10.20.3.4", "s@x.example", "u@rcpt.example").await
    ));
    policy.reload_lists().await.unwrap();

    let named = |client: &str, name: &str, rcpt: &str| {
        let mut r = request(client, "s@x.example", rcpt);
        r.client_name = Some(name.into());
        r
    };
    let mut conn = ConnState::default();
    for (req, want_dunno) in [
        (named("10.20.9.9", "unknown", "u@rcpt.example"), true),
        (named("2001:db8:aa:1::5", "unknown", "u@rcpt.example"), true),
        (named("203.0.113.9", "mx1.partner.example", "u@rcpt.example"), true),
        (named("203.0.113.9", "mail7.trusted.example", "u@rcpt.example"), true),
        (named("203.0.113.9", "evilpartner.example", "u@rcpt.example"), false),
        (named("203.0.113.10", "unknown", "Postmaster@rcpt.example"), true),
        (named("203.0.113.10", "unknown", "vip+tag@rcpt.example"), true),
        (named("203.0.113.10", "unknown", "someone@noisy.example"), true),
        (named("203.0.113.10", "unknown", "someone@sub.noisy.example"), true),
        (named("203.0.113.11", "unknown", "someone@rcpt.example"), false),
    ] {
        let reply = policy.decide(&req, &mut conn).await;
        assert_eq!(reply == "DUNNO", want_dunno, "{req:?} -> {reply}");
        assert!(want_dunno || is_defer(&reply), "{reply}");
    }
    // Removing an entry takes effect on the next reload.
    assert!(store::remove_from_whitelist(&db, StaticList::Clients, ids[0])
        .await
        .unwrap());
    policy.reload_lists().await.unwrap();
    assert!(is_defer(
        &ask(&policy, "10.20.9.9", "t@x.example", "u@rcpt.example").await
    ));

    // Opt-in mode: only the opted-in domains are greylisted.
    store::add_domain_policy(&db, "greylisted.example", "optin", "", "admin")
        .await
        .unwrap()
        .unwrap();
    let optin = GreylistConfig {
        mode: DomainMode::Optin,
        ..config("mx")
    };
    let optin = service(&url, optin, clock.clone()).await;
    assert_eq!(
        ask(&optin, "203.0.113.20", "s@x.example", "u@rcpt.example").await,
        "DUNNO"
    );
    assert!(is_defer(
        &ask(&optin, "203.0.113.20", "s@x.example", "u@greylisted.example").await
    ));
}

#[tokio::test]
async fn not_greylisting_is_dunno_never_ok() {
    let url = database().await;
    let policy = service(&url, config("mx"), ManualClock::new()).await;
    let mut conn = ConnState::default();
    let mut data = request("192.0.2.1", "a@b.example", "c@d.example");
    data.protocol_state = Some("DATA".into());
    assert_eq!(policy.decide(&data, &mut conn).await, "DUNNO");
    let mut no_rcpt = request("192.0.2.1", "a@b.example", "");
    no_rcpt.recipient = None;
    assert_eq!(policy.decide(&no_rcpt, &mut conn).await, "DUNNO");
    let bad_ip = request("not-an-ip", "a@b.example", "c@d.example");
    assert_eq!(policy.decide(&bad_ip, &mut conn).await, "DUNNO");
}

#[tokio::test]
async fn one_header_per_message_with_several_recipients() {
    let url = database().await;
    let clock = ManualClock::new();
    let policy = service(&url, config("mx"), clock.clone()).await;
    let mut conn = ConnState::default();
    let with_instance = |rcpt: &str, instance: &str| {
        let mut r = request("192.0.2.1", "a@b.example", rcpt);
        r.instance = Some(instance.into());
        r
    };
    for rcpt in ["r1@d.example", "r2@d.example"] {
        assert!(is_defer(&policy.decide(&with_instance(rcpt, "1a.1"), &mut conn).await));
    }
    clock.advance(300);
    let first = policy.decide(&with_instance("r1@d.example", "2b.1"), &mut conn).await;
    let second = policy.decide(&with_instance("r2@d.example", "2b.1"), &mut conn).await;
    assert!(first.starts_with("PREPEND "), "{first}");
    assert_eq!(second, "DUNNO");
}

#[tokio::test]
async fn fails_open_quickly_when_the_database_is_slow_or_down() {
    let cluster = PgCluster::start().unwrap();
    let url = cluster.create_database().await;
    migrate(&url).await;
    let clock = ManualClock::new();
    let cfg = GreylistConfig {
        db_timeout_ms: 200,
        db_retry_ms: 300,
        ..config("mx")
    };
    let policy = service(&url, cfg, clock.clone()).await;
    let t = ("192.0.2.1", "a@b.example", "c@d.example");
    assert!(is_defer(&ask(&policy, t.0, t.1, t.2).await));

    // Slow: another session holds a lock the lookup waits for.
    let mut locker = omelse::store::connect(&url).await.unwrap();
    let tx = locker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE greylist_triplets IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(ask(&policy, t.0, t.1, "x@d.example").await, "DUNNO");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    // Within the retry pause, the database is not even tried.
    let started = Instant::now();
    assert_eq!(ask(&policy, t.0, t.1, "y@d.example").await, "DUNNO");
    assert!(started.elapsed() < Duration::from_millis(50), "{:?}", started.elapsed());
    tx.rollback().await.unwrap();
    drop(locker);

    // Down: every answer is DUNNO, quickly.
    cluster.stop().unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    for i in 0..5 {
        let started = Instant::now();
        let reply = ask(&policy, t.0, t.1, &format!("z{i}@d.example")).await;
        assert_eq!(reply, "DUNNO");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(policy.counters.fail_open.load(Ordering::Relaxed) >= 7);

    // Back: the state survived, greylisting resumes once the retry pause is over.
    cluster.restart().unwrap();
    clock.advance(300);
    let deadline = Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let reply = ask(&policy, t.0, t.1, t.2).await;
        if reply != "DUNNO" || Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(reply.starts_with("PREPEND X-Greylist: delayed 300 seconds"), "{reply}");
}

#[tokio::test]
async fn cleanup_removes_expired_state_and_old_decision_partitions() {
    let url = database().await;
    let clock = ManualClock::new();
    let cfg = GreylistConfig {
        awl_sender_passes: 1,
        ..config("mx")
    };
    let policy = service(&url, cfg.clone(), clock.clone()).await;
    // A triplet that never came back, one that passed (and whitelisted its sender).
    assert!(is_defer(
        &ask(&policy, "192.0.2.1", "a@b.example", "never@d.example").await
    ));
    assert!(is_defer(
        &ask(&policy, "192.0.2.1", "a@b.example", "back@d.example").await
    ));
    clock.advance(300);
    assert!(ask(&policy, "192.0.2.1", "a@b.example", "back@d.example")
        .await
        .starts_with("PREPEND"));
    decisions(&url, 3).await;

    let mut db = omelse::store::connect(&url).await.unwrap();
    let now = clock.now();
    let stats = store::cleanup(&mut db, &cfg, now).await.unwrap();
    assert_eq!((stats.triplets, stats.sender_awl), (0, 0));
    // After the retry window only the unpassed triplet goes.
    let later = now + cfg.retry_window_secs + 1;
    let stats = store::cleanup(&mut db, &cfg, later).await.unwrap();
    assert_eq!((stats.triplets, stats.sender_awl, stats.domain_awl), (1, 0, 0));
    assert!(stats.partitions.is_empty());
    // After max age (and the AWL age, and the log retention) everything goes.
    let much_later = now + cfg.awl_max_age_secs + 1;
    let stats = store::cleanup(&mut db, &cfg, much_later).await.unwrap();
    assert_eq!((stats.triplets, stats.sender_awl), (1, 1));
    assert_eq!(stats.partitions.len(), 1, "{:?}", stats.partitions);
    let left: i64 = db
        .query_one(
            "SELECT (SELECT count(*) FROM greylist_triplets) + (SELECT count(*) FROM greylist_sender_awl)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

// ---- the protocol over real sockets ----

const REQ: &str = "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n\
                   client_address=192.0.2.1\nclient_name=unknown\nreverse_client_name=unknown\n\
                   helo_name=client.example\nsender=a@b.example\nrecipient_count=0\n\
                   queue_id=\nsize=0\netrn_domain=\nstress=\nccert_subject=\nserver_port=25\n";

fn req_for(rcpt: &str) -> String {
    format!("{REQ}recipient={rcpt}\nfuture_attribute=ignored\n\n")
}

/// Starts a served policy on a free TCP port and a unix socket.
async fn served(cfg: GreylistConfig, clock: Arc<dyn Clock>) -> (String, std::path::PathBuf, tempdir::Dir) {
    let url = database().await;
    let dir = tempdir::Dir::new();
    let sock = dir.0.join("greylse.sock");
    let tcp = Listener::bind("inet:127.0.0.1:0", 0o666).await.unwrap();
    let addr = tcp.describe();
    let unix = Listener::bind(&format!("unix:{}", sock.display()), 0o666)
        .await
        .unwrap();
    let policy = service(&url, cfg, clock).await;
    tokio::spawn(server::run(policy, vec![tcp, unix]));
    (addr, sock, dir)
}

/// Serves a policy on a free TCP port of 127.0.0.1 and returns the address.
pub(super) async fn served_on(url: &str, cfg: GreylistConfig, clock: Arc<dyn Clock>) -> String {
    let tcp = Listener::bind("inet:127.0.0.1:0", 0o666).await.unwrap();
    let addr = tcp.describe();
    let policy = service(url, cfg, clock).await;
    tokio::spawn(server::run(policy, vec![tcp]));
    addr
}

mod tempdir {
    /// A private directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "greylse-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Reads `n` replies (each `action=…\n\n`).
async fn read_replies<S: AsyncReadExt + Unpin>(stream: &mut S, n: usize) -> Vec<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while buf.windows(2).filter(|w| w == b"\n\n").count() < n {
        let got = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("reply in time")
            .unwrap();
        assert!(got > 0, "connection closed after {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..got]);
    }
    String::from_utf8(buf)
        .unwrap()
        .split_terminator("\n\n")
        .map(str::to_owned)
        .collect()
}

/// Whether the server closes the connection without sending anything.
async fn closed_without_reply(stream: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    match tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await {
        Ok(Ok(_)) => buf.is_empty(),
        Ok(Err(_)) => buf.is_empty(),
        Err(_) => false,
    }
}

#[tokio::test]
async fn pipelined_requests_on_one_connection_and_a_unix_socket() {
    let clock = ManualClock::new();
    let (addr, sock, _dir) = served(config("mx"), clock.clone()).await;
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    let three = format!(
        "{}{}{}",
        req_for("r1@d.example"),
        req_for("r2@d.example"),
        req_for("r1@d.example")
    );
    tcp.write_all(three.as_bytes()).await.unwrap();
    let replies = read_replies(&mut tcp, 3).await;
    assert_eq!(replies.len(), 3);
    for reply in &replies {
        assert!(reply.starts_with("action=DEFER_IF_PERMIT 4.2.0 "), "{reply}");
    }
    // The connection stays open for more.
    clock.advance(300);
    tcp.write_all(req_for("r1@d.example").as_bytes()).await.unwrap();
    let reply = read_replies(&mut tcp, 1).await;
    assert!(
        reply[0].starts_with("action=PREPEND X-Greylist: delayed 300 seconds"),
        "{reply:?}"
    );

    // The same service over the unix socket, in two writes split mid-line.
    let mut unix = UnixStream::connect(&sock).await.unwrap();
    let req = req_for("r2@d.example");
    let (a, b) = req.split_at(40);
    unix.write_all(a.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    unix.write_all(b.as_bytes()).await.unwrap();
    let reply = read_replies(&mut unix, 1).await;
    assert!(reply[0].starts_with("action=PREPEND "), "{reply:?}");
    let mode = std::fs::metadata(&sock).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o666);
    // A second service does not steal a live socket.
    let taken = Listener::bind(&format!("unix:{}", sock.display()), 0o666).await;
    assert_eq!(taken.err().map(|e| e.kind()), Some(std::io::ErrorKind::AddrInUse));
}

#[tokio::test]
async fn malformed_overlong_and_slow_clients_are_closed_without_reply() {
    let cfg = GreylistConfig {
        request_timeout_ms: 300,
        max_line_bytes: 512,
        ..config("mx")
    };
    let (addr, _sock, _dir) = served(cfg, ManualClock::new()).await;

    let mut garbage = TcpStream::connect(&addr).await.unwrap();
    garbage
        .write_all(b"request=smtpd_access_policy\nthis is not an attribute\n\n")
        .await
        .unwrap();
    assert!(closed_without_reply(&mut garbage).await);

    let mut long = TcpStream::connect(&addr).await.unwrap();
    let huge = format!("request=smtpd_access_policy\nsender={}@b.example\n\n", "x".repeat(600));
    long.write_all(huge.as_bytes()).await.unwrap();
    assert!(closed_without_reply(&mut long).await);

    let mut wrong = TcpStream::connect(&addr).await.unwrap();
    wrong.write_all(b"request=junk\n\n").await.unwrap();
    assert!(closed_without_reply(&mut wrong).await);

    // A client that starts a request and stalls is cut after the request timeout.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"request=smtpd_access_policy\nprotocol_state=RCPT\n")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(closed_without_reply(&mut slow).await);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    // Meanwhile well-behaved clients are served.
    let mut good = TcpStream::connect(&addr).await.unwrap();
    good.write_all(req_for("r@d.example").as_bytes()).await.unwrap();
    assert!(read_replies(&mut good, 1).await[0].starts_with("action=DEFER_IF_PERMIT"));
}

#[tokio::test]
async fn many_concurrent_connections() {
    let (addr, _sock, _dir) = served(config("mx"), ManualClock::new()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..50 {
        let addr = addr.clone();
        tasks.spawn(async move {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            for r in 0..10 {
                s.write_all(req_for(&format!("r{r}@c{c}.example")).as_bytes())
                    .await
                    .unwrap();
                let reply = read_replies(&mut s, 1).await;
                assert!(reply[0].starts_with("action=DEFER_IF_PERMIT"), "{reply:?}");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// End to end with the real clock and a 2-second delay.
#[tokio::test]
async fn end_to_end_with_a_real_two_second_delay() {
    let cfg = GreylistConfig {
        delay_secs: 2,
        ..config("mx-e2e")
    };
    let (addr, _sock, _dir) = served(cfg, Arc::new(SystemClock)).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(req_for("e2e@d.example").as_bytes()).await.unwrap();
    assert!(read_replies(&mut s, 1).await[0].starts_with("action=DEFER_IF_PERMIT"));
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    s.write_all(req_for("e2e@d.example").as_bytes()).await.unwrap();
    let reply = read_replies(&mut s, 1).await;
    assert!(
        reply[0].starts_with("action=PREPEND X-Greylist: delayed ")
            && reply[0].contains(" seconds by GreyLSE at mx-e2e; "),
        "{reply:?}"
    );
}

/// Concurrent requests are batched; one triplet several times in a batch is decided in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_one_triplet_are_decided_in_order() {
    let url = database().await;
    let clock = ManualClock::new();
    let policy = service(&url, config("mx"), clock.clone()).await;
    let burst = |rcpts: Vec<String>| {
        let policy = policy.clone();
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for rcpt in rcpts {
                let policy = policy.clone();
                tasks.spawn(async move { ask(&policy, "192.0.2.1", "a@b.example", &rcpt).await });
            }
            let mut replies = Vec::new();
            while let Some(r) = tasks.join_next().await {
                replies.push(r.unwrap());
            }
            replies
        }
    };
    let same: Vec<String> = (0..200).map(|_| "same@d.example".to_owned()).collect();
    let many: Vec<String> = (0..200).map(|i| format!("r{i}@d.example")).collect();
    let replies = burst(same.iter().chain(&many).cloned().collect()).await;
    assert_eq!(replies.len(), 400);
    assert!(replies.iter().all(|r| is_defer(r)), "{replies:?}");
    let db = omelse::store::connect(&url).await.unwrap();
    let row = db
        .query_one(
            "SELECT count(*), max(attempts) FILTER (WHERE recipient = 'same@d.example')
             FROM greylist_triplets",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 201);
    assert_eq!(row.get::<_, Option<i32>>(1), Some(200));
    clock.advance(300);
    let replies = burst(same).await;
    // Exactly one header (the first retry); the others see a triplet that passed.
    assert_eq!(
        replies.iter().filter(|r| r.starts_with("PREPEND ")).count(),
        1,
        "{replies:?}"
    );
    assert_eq!(replies.iter().filter(|r| *r == "DUNNO").count(), 199);
}

/// Connects to `addr` from the loopback address `from`.
async fn connect_from(from: [u8; 4], addr: &str) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::from((from, 0)))?;
    socket.connect(addr.parse().unwrap()).await
}

/// Issue 16: a client outside `allowed_clients` is closed without a reply, and 2,000 idle
/// connections of one allowed client take no more than its share: another MX is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_refused_and_one_client_cannot_take_every_slot() {
    let cfg = GreylistConfig {
        allowed_clients: vec!["127.0.0.1".into(), "127.0.0.2/32".into()],
        ..config("mx")
    };
    assert_eq!(cfg.max_connections, 1000);
    assert_eq!(cfg.max_connections_per_client, 250);
    let url = database().await;
    let tcp = Listener::bind("inet:127.0.0.1:0", 0o666).await.unwrap();
    let addr = tcp.describe();
    let policy = service(&url, cfg, ManualClock::new()).await;
    tokio::spawn(server::run(policy.clone(), vec![tcp]));

    let mut stranger = connect_from([127, 0, 0, 3], &addr).await.unwrap();
    stranger.write_all(req_for("r@d.example").as_bytes()).await.unwrap();
    assert!(closed_without_reply(&mut stranger).await, "a client outside the list");

    let mut idle = Vec::with_capacity(2000);
    for _ in 0..2000 {
        idle.push(connect_from([127, 0, 0, 2], &addr).await.unwrap());
    }
    // The idle client's own connections beyond its share are closed; its first ones still work.
    let mut last = idle.pop().unwrap();
    assert!(closed_without_reply(&mut last).await, "past the per-client cap");
    idle[0].write_all(req_for("r@d.example").as_bytes()).await.unwrap();
    assert!(read_replies(&mut idle[0], 1).await[0].starts_with("action="));

    let mut other = connect_from([127, 0, 0, 1], &addr).await.unwrap();
    other.write_all(req_for("r@d.example").as_bytes()).await.unwrap();
    let reply = read_replies(&mut other, 1).await;
    assert!(reply[0].starts_with("action="), "{reply:?}");
    // The stranger and the idle client's 1,750 connections past its share, each counted.
    assert_eq!(policy.counters.refused.load(Ordering::Relaxed), 1 + 1750);
    drop(idle);
}

/// A unix socket is not world-writable unless configured so; in a directory made as
/// docs/security.md says (group `postfix`, setgid), it belongs to group `postfix`, so that
/// Postfix's smtpd may connect.
#[tokio::test]
async fn the_unix_socket_is_for_its_owner_and_group() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempdir::Dir::new();
    let private = dir.0.join("else");
    let made = std::process::Command::new("install")
        .args(["-d", "-g", "postfix", "-m", "2750"])
        .arg(&private)
        .status()
        .expect("install(1)");
    assert!(
        made.success(),
        "install -d -g postfix (needs root and the postfix group)"
    );
    let sock = private.join("greylse.sock");
    let cfg = GreylistConfig::default();
    let _listener = Listener::bind(&format!("unix:{}", sock.display()), cfg.socket_mode)
        .await
        .unwrap();
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(
        meta.gid(),
        std::fs::metadata(&private).unwrap().gid(),
        "the directory's group"
    );
    assert_ne!(meta.gid(), 0, "group postfix, not root's");
}
