//! Fates through a real Postfix (issue 18): a private Postfix 3.7 (the `tests/` harness) is sent
//! mail with swaks that it refuses at RCPT (550 5.1.1, an unknown mailbox; 554 5.7.1 for the
//! client's HELO), mail over its
//! `message_size_limit` (refused after DATA: Postfix logs only `queue file size limit exceeded`,
//! never `removed`), mail its header checks reject and discard, and mail held at RCPT then deleted
//! with `postsuper -d` (which keeps the sender and recipient its hold line named); and two clients
//! that go away (a raw socket, which swaks cannot play): one in the middle of its message after
//! DATA, one after RCPT once smtpd had given the queue id. Its log is imported, and `elsed search`
//! and `GET /api/v1/messages` find each with its fate: the refusal as an entry of its own with the
//! reply, the others closed with their state and reason.

use std::net::{Shutdown, TcpStream};
use std::time::Instant;

use else_tests::postfix::{self, PrivatePostfix};

use super::*;

/// A Postfix for `fates.test` (one mailbox, `known@`, delivered to the discard service) that
/// takes messages of 20 000 bytes at most, on `port` of 127.0.0.1.
/// Header checks reject `Subject: reject me` and discard `Subject: drop me`; mail to
/// `later@fates.test` is put on hold; a client that says `HELO bad.helo.test` is refused (554).
fn start_postfix(port: u16) -> PrivatePostfix {
    let postfix = PrivatePostfix::prepare("else-fates-postfix");
    let checks = postfix.dir.join("etc/header_checks");
    std::fs::write(
        &checks,
        "/^Subject: reject me/ REJECT spam is not welcome\n/^Subject: drop me/ DISCARD into the bin\n",
    )
    .unwrap();
    let helo_access = postfix.dir.join("etc/helo_access");
    std::fs::write(&helo_access, "/^bad\\.helo\\.test$/ 554 5.7.1 no such HELO\n").unwrap();
    let main = format!(
        "myhostname = mx.fates.test
virtual_mailbox_domains = fates.test
virtual_mailbox_maps = inline:{{ known@fates.test=known, later@fates.test=later }}
virtual_transport = discard:
message_size_limit = 20000
header_checks = regexp:{}
smtpd_helo_restrictions = check_helo_access regexp:{}
smtpd_recipient_restrictions = reject_unauth_destination, check_recipient_access inline:{{ later@fates.test=HOLD }}
",
        checks.display(),
        helo_access.display()
    );
    let listeners = format!("127.0.0.1:{port} inet n - n - - smtpd\n");
    postfix.start(&main, &listeners, &[])
}

/// The queue id of swaks's `250 2.0.0 Ok: queued as QID`.
fn queued_as(swaks: &str) -> String {
    let (_, rest) = swaks
        .split_once("queued as ")
        .unwrap_or_else(|| panic!("not queued: {swaks}"));
    rest.split_whitespace().next().unwrap().to_owned()
}

/// swaks from `sender@client.test` to `to` (and `extra` options); what it printed.
fn swaks(port: u16, to: &str, extra: &[&str]) -> String {
    let out = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port", &port.to_string()])
        .args(["--from", "sender@client.test", "--to", to, "--helo", "client.test"])
        .args(["--timeout", "30"])
        .args(extra)
        .output()
        .expect("swaks runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A client that goes away without QUIT: EHLO, MAIL and one accepted RCPT (smtpd gives the
/// queue id there), then, with `data`, DATA and the headers and half a body; then it closes the
/// socket. Returns the queue id, from the `QID: client=` line Postfix logged for it.
fn client_gone(postfix: &PrivatePostfix, port: u16, data: bool) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to smtpd");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut replies = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    // One reply, multi-line or not; its first three characters.
    let mut reply = || {
        let mut line = String::new();
        loop {
            line.clear();
            replies.read_line(&mut line).expect("a reply from smtpd");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line[..3].to_owned();
            }
        }
    };
    assert_eq!(reply(), "220");
    let mut commands = vec![
        ("EHLO client.test", "250"),
        ("MAIL FROM:<sender@client.test>", "250"),
        ("RCPT TO:<known@fates.test>", "250"),
    ];
    if data {
        commands.push(("DATA", "354"));
    }
    for (command, expected) in commands {
        writer.write_all(format!("{command}\r\n").as_bytes()).unwrap();
        assert_eq!(reply(), expected, "{command}");
    }
    if data {
        writer
            .write_all(
                b"From: sender@client.test\r\nTo: known@fates.test\r\nSubject: cut short\r\n\
                  Message-ID: <cut@client.test>\r\n\r\nthe first half of the bo",
            )
            .unwrap();
        // smtpd reads it all before it sees the socket close.
        std::thread::sleep(Duration::from_millis(500));
    }
    // Closed, not just dropped: the reader's clone would keep the socket open.
    writer.shutdown(Shutdown::Both).unwrap();
    let after = if data { "DATA" } else { "RCPT" };
    let log = wait_for_log(postfix, &[&format!("lost connection after {after}")]);
    // The sessions run one after another: the latest `client=` line is this one's.
    let line = log
        .lines()
        .rfind(|l| l.contains(": client=localhost[127.0.0.1]"))
        .unwrap_or_else(|| panic!("no client= line:\n{log}"));
    let (_, rest) = line.split_once("]: ").unwrap();
    rest.split(':').next().unwrap().to_owned()
}

/// `elsed search --json FILTER VALUE`: the entries it printed, one JSON object a line.
fn search(elsed: &Elsed, filter: &str, value: &str) -> Vec<Value> {
    let found = ok(elsed.cli(&["search", "--json", filter, value], ""));
    found.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Waits until Postfix's log has every one of `needles` (postlogd writes asynchronously).
fn wait_for_log(postfix: &PrivatePostfix, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = postfix.log();
        if needles.iter().all(|n| log.contains(n)) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "Postfix's log lacks one of {needles:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_rejected_discarded_and_deleted_mail_is_found_with_its_fate_through_real_postfix() {
    assert!(
        postfix::available() && else_tests::require::tool("/usr/bin/swaks", "swaks").is_some(),
        "this test needs root, Postfix and swaks (scripts/setup-debian.sh installs them)"
    );
    let port = else_tests::rsyslogd::free_port();
    let postfix = start_postfix(port);
    let refused = swaks(port, "ghost@fates.test", &[]);
    assert!(refused.contains("550 5.1.1"), "{refused}");
    let bad_helo = swaks(port, "helo-refused@fates.test", &["--helo", "bad.helo.test"]);
    assert!(bad_helo.contains("554 5.7.1"), "{bad_helo}");
    let body = "x".repeat(70) + "\n";
    let oversized = swaks(port, "known@fates.test", &["--body", &body.repeat(500)]);
    assert!(oversized.contains("552 5.3.4"), "{oversized}");
    let spam = swaks(port, "known@fates.test", &["--header", "Subject: reject me"]);
    assert!(spam.contains("550 5.7.1 spam is not welcome"), "{spam}");
    let junk = queued_as(&swaks(port, "known@fates.test", &["--header", "Subject: drop me"]));
    let later = queued_as(&swaks(port, "later@fates.test", &[]));
    // smtpd logged the hold at RCPT (NOQUEUE: hold); the message is in the hold queue once
    // cleanup has it.
    wait_for_log(&postfix, &[&format!("{later}: message-id=")]);
    postfix.postsuper(&["-d", &later]);
    let cut = client_gone(&postfix, port, true);
    let gone = client_gone(&postfix, port, false);
    let log = wait_for_log(
        &postfix,
        &[
            "NOQUEUE: reject: RCPT",
            "Helo command rejected",
            "queue file size limit exceeded",
            "spam is not welcome",
            &format!("{junk}: discard:"),
            &format!("{later}: removed"),
            // cleanup logs what it read of the cut message after smtpd's `disconnect`.
            &format!("{cut}: message-id=<cut@client.test>"),
        ],
    );
    println!("Postfix's log:\n{log}");

    let elsed = Elsed::start("fates", "").await;
    let file = scratch("fates").join("maillog");
    std::fs::write(&file, &log).unwrap();
    ok(elsed.cli(&["import", "--force", file.to_str().unwrap()], ""));

    // elsed search: the refusal, an entry of its own with the reply Postfix gave.
    let found = search(&elsed, "--recipient", "ghost@fates.test");
    assert_eq!(found.len(), 1, "{found:?}");
    let refusal = &found[0];
    assert_eq!(
        (&refusal["kind"], &refusal["queue_id"], &refusal["state"]),
        (&json!("refused"), &json!("NOQUEUE"), &json!("rejected")),
        "{refusal}"
    );
    assert_eq!(
        (
            &refusal["refusal"]["code"],
            &refusal["refusal"]["enhanced"],
            &refusal["refusal"]["stage"]
        ),
        (&json!(550), &json!("5.1.1"), &json!("RCPT")),
        "{refusal}"
    );
    assert!(
        refusal["refusal"]["reason"].as_str().unwrap().contains("User unknown"),
        "{refusal}"
    );
    assert_eq!(
        (&refusal["client_ip"], &refusal["sender"]),
        (&json!("127.0.0.1"), &json!("sender@client.test"))
    );
    assert_eq!(refusal["refusal"]["helo"], "client.test");

    // Refused for its HELO: found by its recipient, with the code and the HELO.
    let found = search(&elsed, "--recipient", "helo-refused@fates.test");
    assert_eq!(found.len(), 1, "{found:?}");
    let helo = &found[0];
    assert_eq!(
        (
            &helo["kind"],
            &helo["state"],
            &helo["refusal"]["code"],
            &helo["refusal"]["enhanced"]
        ),
        (&json!("refused"), &json!("rejected"), &json!(554), &json!("5.7.1")),
        "{helo}"
    );
    assert_eq!(helo["refusal"]["helo"], "bad.helo.test", "{helo}");
    assert!(
        helo["refusal"]["reason"]
            .as_str()
            .unwrap()
            .contains("Helo command rejected"),
        "{helo}"
    );

    // …and the oversized message, closed as rejected with its reason, beside it.
    let rejected = search(&elsed, "--status", "rejected");
    // The two refusals, the oversized message and the one header checks rejected.
    assert_eq!(rejected.len(), 4, "{rejected:?}");
    let spam = rejected
        .iter()
        .find(|m| {
            m["state_reason"]
                .as_str()
                .is_some_and(|r| r.contains("spam is not welcome"))
        })
        .unwrap_or_else(|| panic!("the message header checks rejected: {rejected:?}"));
    assert_eq!(
        (&spam["kind"], &spam["state"]),
        (&json!("message"), &json!("rejected")),
        "{spam}"
    );
    let message = rejected
        .iter()
        .find(|m| m["kind"] == "message" && m != &spam)
        .unwrap_or_else(|| panic!("the oversized message: {rejected:?}"));
    assert_eq!(message["state"], "rejected", "{message}");
    assert!(
        message["state_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("queue file size limit exceeded"),
        "{message}"
    );
    let queue_id = message["queue_id"].as_str().unwrap().to_owned();

    // Discarded by header checks, deleted from the hold queue: closed, with their reasons, down
    // to their recipients.
    for (queue_id, state, reason) in [
        (&junk, "discarded", "into the bin"),
        (&later, "deleted", "postsuper -d"),
    ] {
        let found = search(&elsed, "--queue-id", queue_id);
        let found = found.first().unwrap_or_else(|| panic!("{queue_id} not found"));
        assert_eq!(found["state"], state, "{found}");
        assert!(
            found["state_reason"].as_str().unwrap_or_default().contains(reason),
            "{found}"
        );
        // Neither meets qmgr: only the decision's line names the sender and recipient (for the
        // held one, the `NOQUEUE: hold` line before its queue id), and the message keeps them.
        assert_eq!(found["sender"], "sender@client.test", "{found}");
        assert_eq!(found["recipients"][0]["status"], state, "{found}");
    }
    let found = ok(elsed.cli(&["search", "--json", "--queue-id", &later], ""));
    let found: Value = serde_json::from_str(found.lines().next().expect("found")).unwrap();
    assert_eq!(found["recipients"][0]["address"], "later@fates.test", "{found}");

    // The clients that went away: closed as abandoned, with how the session ended, and found
    // together by that state.
    let abandoned = search(&elsed, "--status", "abandoned");
    assert_eq!(abandoned.len(), 2, "{abandoned:?}");
    let left = [
        (&cut, "lost connection after DATA", Some("cut@client.test")),
        (&gone, "lost connection after RCPT", None),
    ];
    for (queue_id, how, message_id) in left {
        let found = search(&elsed, "--queue-id", queue_id);
        let found = found.first().unwrap_or_else(|| panic!("{queue_id} not found"));
        assert_eq!(
            (&found["kind"], &found["state"], &found["message_id"]),
            (&json!("message"), &json!("abandoned"), &json!(message_id)),
            "{found}"
        );
        let reason = found["state_reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with("the client left before the message was queued") && reason.contains(how),
            "{found}"
        );
        assert!(abandoned.contains(found), "{found} in {abandoned:?}");
    }

    // The API finds the same, with the same fates.
    let admin = elsed.admin().await;
    let page: Value = elsed
        .get("/messages?status=abandoned", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 2, "{page}");
    for (queue_id, how, _) in left {
        let item = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["queue_id"] == json!(queue_id))
            .unwrap_or_else(|| panic!("{queue_id} in {page}"));
        assert_eq!(item["state"], "abandoned", "{item}");
        assert!(
            item["state_reason"].as_str().unwrap_or_default().contains(how),
            "{item}"
        );
    }
    let page: Value = elsed
        .get("/messages?recipient=ghost%40fates.test", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 1, "{page}");
    let item = &page["items"][0];
    assert_eq!(
        (&item["kind"], &item["state"]),
        (&json!("refused"), &json!("rejected")),
        "{item}"
    );
    assert_eq!(
        (&item["refusal"]["code"], &item["refusal"]["enhanced"]),
        (&json!(550), &json!("5.1.1"))
    );
    assert!(
        item["state_reason"].as_str().unwrap().starts_with("550 5.1.1 "),
        "{item}"
    );
    let page: Value = elsed
        .get("/messages?status=rejected", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 4, "{page}");
    let item = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["queue_id"] == json!(queue_id))
        .unwrap_or_else(|| panic!("{page}"));
    assert_eq!(
        (&item["queue_id"], &item["state"]),
        (&json!(queue_id), &json!("rejected")),
        "{item}"
    );
    assert!(
        item["state_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("queue file size limit exceeded"),
        "{item}"
    );
}

/// A greylisting deferral (450 at RCPT) whose sender and recipient came back is left out of the
/// search (the message that followed is the answer); one that never came back is found as refused,
/// by its recipient and by `--status rejected`, with its code. The lines are those Postfix logs
/// for a policy service's `DEFER_IF_PERMIT` (postgrey's, GreyLSE's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_greylisting_deferral_is_found_only_when_the_client_never_came_back() {
    const LOG: &str = "\
Mar 14 12:00:00 mx1 postfix/smtpd[5001]: connect from relay.example.net[198.51.100.20]
Mar 14 12:00:01 mx1 postfix/smtpd[5001]: NOQUEUE: reject: RCPT from relay.example.net[198.51.100.20]: 450 4.2.0 <back@example.org>: Recipient address rejected: Greylisted, see https://example.org/greylisting; from=<news@example.net> to=<back@example.org> proto=ESMTP helo=<relay.example.net>
Mar 14 12:00:01 mx1 postfix/smtpd[5001]: NOQUEUE: reject: RCPT from relay.example.net[198.51.100.20]: 450 4.2.0 <gone@example.org>: Recipient address rejected: Greylisted, see https://example.org/greylisting; from=<news@example.net> to=<gone@example.org> proto=ESMTP helo=<relay.example.net>
Mar 14 12:00:01 mx1 postfix/smtpd[5001]: disconnect from relay.example.net[198.51.100.20] ehlo=1 mail=1 rcpt=0/2 quit=1 commands=3/5
Mar 14 12:06:00 mx1 postfix/smtpd[5002]: connect from relay.example.net[198.51.100.20]
Mar 14 12:06:01 mx1 postfix/smtpd[5002]: 6E6E6E6E6E: client=relay.example.net[198.51.100.20]
Mar 14 12:06:01 mx1 postfix/cleanup[5003]: 6E6E6E6E6E: message-id=<retry@example.net>
Mar 14 12:06:01 mx1 postfix/qmgr[815]: 6E6E6E6E6E: from=<news@example.net>, size=800, nrcpt=1 (queue active)
Mar 14 12:06:02 mx1 postfix/smtpd[5002]: disconnect from relay.example.net[198.51.100.20] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
Mar 14 12:06:02 mx1 postfix/lmtp[5004]: 6E6E6E6E6E: to=<back@example.org>, relay=mail.example.org[private/dovecot-lmtp], delay=0.5, delays=0.1/0.01/0.02/0.37, dsn=2.0.0, status=sent (250 2.0.0 <back@example.org> Saved)
Mar 14 12:06:02 mx1 postfix/qmgr[815]: 6E6E6E6E6E: removed
";
    let elsed = Elsed::start("greylisted", "").await;
    let file = scratch("greylisted").join("maillog");
    std::fs::write(&file, LOG).unwrap();
    ok(elsed.cli(&["import", "--force", file.to_str().unwrap()], ""));

    let back = search(&elsed, "--recipient", "back@example.org");
    assert_eq!(back.len(), 1, "only the message that followed the deferral: {back:?}");
    assert_eq!(
        (&back[0]["kind"], &back[0]["queue_id"]),
        (&json!("message"), &json!("6E6E6E6E6E")),
        "{back:?}"
    );
    let gone = search(&elsed, "--recipient", "gone@example.org");
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_eq!(
        (&gone[0]["kind"], &gone[0]["state"], &gone[0]["refusal"]["code"]),
        (&json!("refused"), &json!("rejected"), &json!(450)),
        "{gone:?}"
    );
    let refused = search(&elsed, "--status", "rejected");
    assert_eq!(refused.len(), 1, "the deferral never retried alone: {refused:?}");
    assert_eq!(refused[0]["refusal"]["recipient"], "gone@example.org", "{refused:?}");
}
