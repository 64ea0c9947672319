//! What a caller may see, as SQL.
//!
//! A [`Scope`] is turned into SQL conditions here, in one place, so that every query of every
//! screen (and every scheduled report) narrows the same way: an administrator sees everything; a
//! group member sees the messages that touch a server *and* a domain of one same group; an end
//! user sees mail from or to their addresses.
//!
//! **The envelope sender is forgeable**: anyone on the Internet can send mail *from* a
//! customer's domain to another customer. So a sender grants visibility only when the way the
//! mail came in vouches for it ([`sender_vouched`]): an authenticated submission, a local one,
//! or a message whose origin is internal (flows `outbound` and `internal`). On `inbound` and
//! `relayed` mail, and while the flow is unknown, only the recipients do.
//!
//! **Raw lines** ([`Scope::log_events_condition`]) follow what they belong to: a line of a
//! visible message, of a visible reject, or (for group members) of an smtpd session that
//! carried one of those. Lines of nothing (daemon starts, warnings) are for administrators and
//! for the groups an administrator marked as owning that server whole.

use crate::sql::Query;

/// What a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// One entry per group: its servers and its domains (lower case).
    Groups(Vec<GroupScope>),
    /// Lower-case addresses.
    Addresses(Vec<String>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupScope {
    pub server_ids: Vec<i32>,
    pub domains: Vec<String>,
    /// The servers (among `server_ids`) the group owns whole: its members see every line of
    /// them, those that belong to no message too.
    pub whole_server_ids: Vec<i32>,
}

/// Whether the sender of a `messages` row, or of a `rejects` row, may grant visibility: the
/// rule the rollups follow too ([`omelse::store::vouched`]).
pub use omelse::store::vouched::{reject_sender as reject_sender_vouched, sender as sender_vouched};

/// Whether the original sender of the `ndrs` row `n` may grant visibility: the NDR is linked to
/// the message it reports on and that message's sender is vouched for. (An NDR not linked is
/// about mail of unknown origin: only its failed recipients count.)
fn ndr_sender_vouched(n: &str) -> String {
    let message = sender_vouched("scope_nm");
    format!(
        "EXISTS (SELECT 1 FROM messages scope_nm
                 WHERE scope_nm.started_at = {n}.message_started_at AND scope_nm.uid = {n}.message_uid
                   AND {message})"
    )
}

impl Scope {
    /// The (server, domain) pairs a group member may see, as two parallel arrays for `unnest`.
    pub fn pairs(groups: &[GroupScope]) -> (Vec<i32>, Vec<String>) {
        let mut servers = Vec::new();
        let mut domains = Vec::new();
        for group in groups {
            for &server in &group.server_ids {
                for domain in &group.domains {
                    servers.push(server);
                    domains.push(domain.clone());
                }
            }
        }
        (servers, domains)
    }

    /// The servers the groups own whole (sorted, without repeats): what belongs to no message
    /// there (lines, postscreen's counts, the report's warnings) is their members' too.
    pub fn whole_servers(groups: &[GroupScope]) -> Vec<i32> {
        Self::server_ids(groups, |g| &g.whole_server_ids)
    }

    /// Sorted, without repeats: the ids `ids_of` gives for every group.
    fn server_ids(groups: &[GroupScope], ids_of: fn(&GroupScope) -> &[i32]) -> Vec<i32> {
        let mut ids: Vec<i32> = groups.iter().flat_map(|g| ids_of(g).iter().copied()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// A condition on a server id column (`s.id`, `l.server_id`): the caller may see that server
    /// (administrators: all; group members: their groups' servers; end users: none, their
    /// view is their mail, not the fleet). Binds into `q`.
    pub fn servers_condition(&self, q: &mut Query, column: &str) -> String {
        match self {
            Scope::All => "TRUE".into(),
            Scope::Groups(groups) => {
                let ids = q.bind(Self::server_ids(groups, |g| &g.server_ids));
                format!("{column} = ANY({ids}::int[])")
            }
            Scope::Addresses(_) => "FALSE".into(),
        }
    }

    /// Some (server, domain) pair of the groups has the server `server_column` and a domain for
    /// which `domain_matches` (written about `scope.domain`) holds.
    fn pairs_condition(q: &mut Query, groups: &[GroupScope], server_column: &str, domain_matches: &str) -> String {
        let (servers, domains) = Self::pairs(groups);
        let servers = q.bind(servers);
        let domains = q.bind(domains);
        format!(
            "EXISTS (SELECT 1 FROM unnest({servers}::int[], {domains}::text[]) AS scope(server_id, domain)
                     WHERE scope.server_id = {server_column} AND {domain_matches})"
        )
    }

    /// The message `m`, or one recipient row `recipient` of it, belongs to `party`: its vouched
    /// sender does, or (for the message) one of its recipients or (for a recipient row) that one.
    fn message_party(m: &str, recipient: Option<&str>, party: Party<'_>) -> String {
        let vouched = sender_vouched(m);
        let sender = party.sender_is(m);
        let recipient = match recipient {
            Some(r) => party.recipient_is(r),
            None => format!(
                "EXISTS (SELECT 1 FROM recipients scope_r
                         WHERE scope_r.message_started_at = {m}.started_at AND scope_r.message_uid = {m}.uid
                           AND {})",
                party.recipient_is("scope_r")
            ),
        };
        format!("(({sender} AND {vouched}) OR {recipient})")
    }

    /// A condition on a `messages` row aliased `m`: the message is visible. Binds into `q`.
    pub fn messages_condition(&self, q: &mut Query, m: &str) -> String {
        self.message_or_recipient_condition(q, m, None)
    }

    /// A condition on a `recipients` row aliased `r` of the visible message `m`: the caller may
    /// see that recipient (its address, status and attempts). Whoever sees the message through
    /// its (vouched) sender sees all its recipients; whoever sees it through a recipient sees
    /// their own recipients only, not the other customers' or people's on the same message.
    pub fn recipients_condition(&self, q: &mut Query, m: &str, r: &str) -> String {
        self.message_or_recipient_condition(q, m, Some(r))
    }

    fn message_or_recipient_condition(&self, q: &mut Query, m: &str, recipient: Option<&str>) -> String {
        match self {
            Scope::All => "TRUE".into(),
            Scope::Groups(groups) => Self::pairs_condition(
                q,
                groups,
                &format!("{m}.server_id"),
                &Self::message_party(m, recipient, Party::Domain),
            ),
            Scope::Addresses(addresses) => {
                let addresses = q.bind(addresses.clone());
                Self::message_party(m, recipient, Party::Addresses(&addresses))
            }
        }
    }

    /// A condition on a `rejects` row aliased `r`: a group member sees the decisions taken on one
    /// of a group's servers for a recipient of that group's domains, or a sender of them that is
    /// vouched for ([`reject_sender_vouched`]); an end user those for their addresses, alike.
    /// Binds into `q`.
    pub fn rejects_condition(&self, q: &mut Query, r: &str) -> String {
        let vouched = reject_sender_vouched(r);
        match self {
            Scope::All => "TRUE".into(),
            Scope::Groups(groups) => Self::pairs_condition(
                q,
                groups,
                &format!("{r}.server_id"),
                &format!(
                    "(scope.domain = else_domain({r}.recipient)
                      OR (scope.domain = else_domain({r}.sender) AND {vouched}))"
                ),
            ),
            Scope::Addresses(addresses) => {
                let addresses = q.bind(addresses.clone());
                format!(
                    "(lower({r}.recipient) = ANY({addresses}::text[])
                      OR (lower({r}.sender) = ANY({addresses}::text[]) AND {vouched}))"
                )
            }
        }
    }

    /// A condition on a `log_events` row aliased `e`: the caller may see the raw line. Binds into
    /// `q`.
    ///
    /// A line is visible when it belongs to something visible: its message (the life of the
    /// queue id, `message_uid`, not the id alone: short queue ids are reused), or the reject
    /// taken on that line (same `(ts, line_key)`). A group member also sees the lines of an smtpd
    /// session that carried a visible message or reject (connect, TLS, disconnect), and every
    /// line of the servers their groups own whole. Each branch is an index lookup per line:
    /// `messages (uid)`, `rejects (ts, line_key)`, `log_events (session_uid)`,
    /// `rejects (session_uid)`, and a member's lines are those of their groups' servers first.
    ///
    /// Each `EXISTS` ends with `OFFSET 0` so that PostgreSQL checks it line by line as the
    /// newest-first scan goes, and stops at the page's end: without it the planner may hash the
    /// session branch instead, which means finding every visible session of the whole table
    /// first (8–10 s for a member's page of 2 million lines, 0.1–0.2 s with it: docs/benchmarks.md).
    pub fn log_events_condition(&self, q: &mut Query, e: &str) -> String {
        if *self == Scope::All {
            return "TRUE".into();
        }
        let message = self.messages_condition(q, "scope_lm");
        let reject = self.rejects_condition(q, "scope_lr");
        let mut branches = vec![
            format!(
                "({e}.message_uid IS NOT NULL
                  AND EXISTS (SELECT 1 FROM messages scope_lm
                              WHERE scope_lm.uid = {e}.message_uid AND scope_lm.server_id = {e}.server_id
                                AND {message} OFFSET 0))"
            ),
            format!(
                "EXISTS (SELECT 1 FROM rejects scope_lr
                         WHERE scope_lr.ts = {e}.ts AND scope_lr.line_key = {e}.line_key AND {reject} OFFSET 0)"
            ),
        ];
        let Scope::Groups(groups) = self else {
            return format!("({})", branches.join(" OR "));
        };
        let session_message = self.messages_condition(q, "scope_sm");
        let session_reject = self.rejects_condition(q, "scope_sr");
        branches.push(format!(
            "({e}.session_uid IS NOT NULL
              AND (EXISTS (SELECT 1 FROM log_events scope_se
                           JOIN messages scope_sm ON scope_sm.uid = scope_se.message_uid
                                                 AND scope_sm.server_id = scope_se.server_id
                           WHERE scope_se.session_uid = {e}.session_uid AND scope_se.message_uid IS NOT NULL
                             AND {session_message} OFFSET 0)
                   OR EXISTS (SELECT 1 FROM rejects scope_sr
                              WHERE scope_sr.session_uid = {e}.session_uid AND {session_reject} OFFSET 0)))"
        ));
        let whole = Self::whole_servers(groups);
        if !whole.is_empty() {
            branches.insert(0, format!("{e}.server_id = ANY({}::int[])", q.bind(whole.clone())));
        }
        // Every branch is about a line of one of the groups' servers: a cheap test that spares
        // the others' lines the lookups.
        let mut servers = Self::server_ids(groups, |g| &g.server_ids);
        servers.extend(whole);
        let servers = q.bind(servers);
        format!(
            "({e}.server_id = ANY({servers}::int[]) AND ({}))",
            branches.join(" OR ")
        )
    }

    /// A condition on an `ndrs` row aliased `n`: the NDR is visible. Binds into `q`.
    ///
    /// A group member sees the NDRs reported by one of the group's servers about mail to a
    /// failed recipient in a domain of that same group, or from an original sender in one when
    /// that sender is vouched for, and the NDRs linked to a message they may see. An end user
    /// sees the NDRs whose failed recipient is one of their addresses, or whose vouched-for
    /// original sender is (not, through a shared message, the failures of other recipients).
    pub fn ndrs_condition(&self, q: &mut Query, n: &str) -> String {
        let failed_recipient = |cond: &str| {
            format!(
                "EXISTS (SELECT 1 FROM ndr_recipients scope_nr
                         WHERE scope_nr.ndr_received_at = {n}.received_at AND scope_nr.ndr_id = {n}.id
                           AND {cond})"
            )
        };
        let vouched = ndr_sender_vouched(n);
        match self {
            Scope::All => "TRUE".into(),
            Scope::Groups(groups) => {
                let (servers, domains) = Self::pairs(groups);
                let servers = q.bind(servers);
                let domains = q.bind(domains);
                let reported_by = crate::ndr::store::reported_by(n, "scope_s");
                let recipient = failed_recipient(
                    "scope.domain IN (else_domain(scope_nr.final_recipient), else_domain(scope_nr.original_recipient))",
                );
                let message = self.messages_condition(q, "scope_m");
                format!(
                    "(EXISTS (SELECT 1 FROM unnest({servers}::int[], {domains}::text[]) AS scope(server_id, domain)
                              JOIN servers scope_s ON scope_s.id = scope.server_id
                              WHERE {reported_by}
                                AND ((scope.domain = else_domain({n}.postfix_sender) AND {vouched}) OR {recipient}))
                      OR EXISTS (SELECT 1 FROM messages scope_m
                                 WHERE scope_m.started_at = {n}.message_started_at AND scope_m.uid = {n}.message_uid
                                   AND {message}))"
                )
            }
            Scope::Addresses(addresses) => {
                let addresses = q.bind(addresses.clone());
                let recipient = failed_recipient(&Self::ndr_recipient_is(&addresses, "scope_nr"));
                format!("((lower({n}.postfix_sender) = ANY({addresses}::text[]) AND {vouched}) OR {recipient})")
            }
        }
    }

    /// The failed recipient `nr` is one of the addresses bound as `addresses`.
    fn ndr_recipient_is(addresses: &str, nr: &str) -> String {
        format!(
            "(lower({nr}.final_recipient) = ANY({addresses}::text[])
              OR lower({nr}.original_recipient) = ANY({addresses}::text[]))"
        )
    }

    /// A condition on an `ndr_recipients` row aliased `nr` of the visible NDR `n`: the caller may
    /// read that failure. An end user reads every failure of an NDR about their own (vouched)
    /// mail, and only their own failures in the others; administrators and group members every
    /// failure of the NDRs they see.
    pub fn ndr_recipients_condition(&self, q: &mut Query, n: &str, nr: &str) -> String {
        match self {
            Scope::All | Scope::Groups(_) => "TRUE".into(),
            Scope::Addresses(addresses) => {
                let vouched = ndr_sender_vouched(n);
                let addresses = q.bind(addresses.clone());
                let own = Self::ndr_recipient_is(&addresses, nr);
                format!("((lower({n}.postfix_sender) = ANY({addresses}::text[]) AND {vouched}) OR {own})")
            }
        }
    }

    /// A condition on a `greylist_decisions` row aliased `d`: the decision is visible. Binds
    /// into `q`.
    ///
    /// Greylisting is shared by every MX (the decisions log names the policy service, not the
    /// smtpd that asked), so a group member sees the decisions about mail to the group's
    /// domains, whatever the server; an end user those about mail to their addresses. Greylisting
    /// judges unauthenticated mail from the Internet: its sender is whatever the client claimed,
    /// and grants nothing.
    pub fn greylist_condition(&self, q: &mut Query, d: &str) -> String {
        match self {
            Scope::All => "TRUE".into(),
            Scope::Groups(groups) => {
                let domains: Vec<String> = groups.iter().flat_map(|g| g.domains.iter().cloned()).collect();
                let domains = q.bind(domains);
                format!("{d}.recipient_domain = ANY({domains}::text[])")
            }
            Scope::Addresses(addresses) => {
                let addresses = q.bind(addresses.clone());
                format!("{d}.recipient = ANY({addresses}::text[])")
            }
        }
    }
}

/// Whom a message's sender and recipients are compared with.
#[derive(Clone, Copy)]
enum Party<'a> {
    /// A group's domain, `scope.domain` of [`Scope::pairs_condition`].
    Domain,
    /// The caller's addresses, bound as this parameter.
    Addresses(&'a str),
}

impl Party<'_> {
    /// The sender of the `messages` row `m` is the party.
    fn sender_is(self, m: &str) -> String {
        match self {
            Party::Domain => format!("scope.domain = else_domain({m}.sender)"),
            Party::Addresses(addresses) => format!("lower({m}.sender) = ANY({addresses}::text[])"),
        }
    }

    /// The `recipients` row `r` (its address or the original one) is the party.
    fn recipient_is(self, r: &str) -> String {
        match self {
            Party::Domain => format!("scope.domain IN (else_domain({r}.address), else_domain({r}.orig_address))"),
            Party::Addresses(addresses) => format!(
                "(lower({r}.address) = ANY({addresses}::text[]) OR lower({r}.orig_address) = ANY({addresses}::text[]))"
            ),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use else_tests::PgCluster;
    use tokio_postgres::Client;

    use super::*;

    /// Server ids of the fixture (`s1`, `s2`) and its messages by uid:
    /// 1: s1, a@one.example → x@two.example, outbound
    /// 2: s2, b@two.example → c@one.example, outbound
    /// 3: s1, <> → d@three.example (originally e@one.example, a forward), flow unknown
    /// 4: s2, Z@Three.example → w@three.example, internal
    /// 5: s1, a@one.example → y@two.example, inbound: someone on the Internet forged one.example
    pub(crate) async fn scope_fixture() -> (Client, i32, i32) {
        let url = PgCluster::shared().create_database().await;
        let mut client = omelse::store::connect(&url).await.unwrap();
        omelse::store::migrate(&mut client).await.unwrap();
        // 2024-03-14, the day of the messages: its partitions.
        omelse::store::ensure_days(&mut client, &BTreeSet::from([19796]))
            .await
            .unwrap();
        let s1: i32 = client
            .query_one("INSERT INTO servers (name) VALUES ('s1') RETURNING id", &[])
            .await
            .unwrap()
            .get(0);
        let s2: i32 = client
            .query_one("INSERT INTO servers (name) VALUES ('s2') RETURNING id", &[])
            .await
            .unwrap()
            .get(0);
        // uid, server, sender, recipient, original recipient, flow
        type Message<'a> = (i64, i32, Option<&'a str>, &'a str, Option<&'a str>, Option<&'a str>);
        let messages: [Message; 5] = [
            (1, s1, Some("a@one.example"), "x@two.example", None, Some("outbound")),
            (2, s2, Some("b@two.example"), "c@one.example", None, Some("outbound")),
            (3, s1, None, "d@three.example", Some("e@one.example"), None),
            (
                4,
                s2,
                Some("Z@Three.example"),
                "w@three.example",
                None,
                Some("internal"),
            ),
            (5, s1, Some("a@one.example"), "y@two.example", None, Some("inbound")),
        ];
        for (uid, server, sender, recipient, orig, flow) in messages {
            client
                .execute(
                    "INSERT INTO messages (started_at, uid, server_id, queue_id, first_seen, last_seen, sender,
                                           origin, flow, state, closed, version)
                     VALUES ('2024-03-14T10:00:00Z', $1, $2, 'Q' || $1::bigint::text, '2024-03-14T10:00:00Z',
                             '2024-03-14T10:00:01Z', $3, 'smtpd', $4, 'delivered', true, 1)",
                    &[&uid, &server, &sender, &flow],
                )
                .await
                .unwrap();
            client
                .execute(
                    "INSERT INTO recipients (message_started_at, message_uid, address, orig_address, status,
                                             attempts, last_attempt_at)
                     VALUES ('2024-03-14T10:00:00Z', $1, $2, $3, 'sent', 1, '2024-03-14T10:00:01Z')",
                    &[&uid, &recipient, &orig],
                )
                .await
                .unwrap();
        }
        (client, s1, s2)
    }

    /// The first column of `select`, in order, of the rows that pass the condition `condition`
    /// builds.
    async fn selected(client: &Client, select: &str, condition: impl FnOnce(&mut Query) -> String) -> Vec<i64> {
        let mut q = Query::default();
        let condition = condition(&mut q);
        q.and(condition);
        client
            .query(&format!("{select} {} ORDER BY 1", q.where_clause()), &q.params())
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    /// The uids of the messages `scope` sees.
    pub(crate) async fn visible(client: &Client, scope: &Scope) -> Vec<i64> {
        selected(client, "SELECT m.uid FROM messages m", |q| {
            scope.messages_condition(q, "m")
        })
        .await
    }

    fn group(server_ids: &[i32], domains: &[&str]) -> GroupScope {
        GroupScope {
            server_ids: server_ids.to_vec(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_scope_sees_exactly_its_messages() {
        let (client, s1, s2) = scope_fixture().await;
        let addresses = |list: &[&str]| Scope::Addresses(list.iter().map(|a| a.to_string()).collect());
        let cases: Vec<(&str, Scope, Vec<i64>)> = vec![
            ("admin", Scope::All, vec![1, 2, 3, 4, 5]),
            // Sender's domain (outbound: vouched for; not the forged inbound 5), and a recipient's
            // original address, on the group's server.
            (
                "s1 × one",
                Scope::Groups(vec![group(&[s1], &["one.example"])]),
                vec![1, 3],
            ),
            // Recipients grant whatever the flow.
            (
                "s1 × two",
                Scope::Groups(vec![group(&[s1], &["two.example"])]),
                vec![1, 5],
            ),
            ("s2 × one", Scope::Groups(vec![group(&[s2], &["one.example"])]), vec![2]),
            // Pairs stay within a group: s2 × three is nobody's, so message 4 is hidden.
            (
                "two groups",
                Scope::Groups(vec![group(&[s1], &["three.example"]), group(&[s2], &["one.example"])]),
                vec![2, 3],
            ),
            (
                "mixed case sender",
                Scope::Groups(vec![group(&[s2], &["three.example"])]),
                vec![4],
            ),
            ("no group", Scope::Groups(vec![]), vec![]),
            (
                "group without domains",
                Scope::Groups(vec![group(&[s1, s2], &[])]),
                vec![],
            ),
            (
                "group without servers",
                Scope::Groups(vec![group(&[], &["one.example"])]),
                vec![],
            ),
            ("sender, not the forged one", addresses(&["a@one.example"]), vec![1]),
            ("recipient of forged mail", addresses(&["y@two.example"]), vec![5]),
            ("recipient", addresses(&["c@one.example"]), vec![2]),
            ("original recipient", addresses(&["e@one.example"]), vec![3]),
            ("sender of other case", addresses(&["z@three.example"]), vec![4]),
            (
                "two addresses",
                addresses(&["x@two.example", "w@three.example"]),
                vec![1, 4],
            ),
            ("no address", addresses(&[]), vec![]),
            ("SQL in an address", addresses(&["' OR '1'='1"]), vec![]),
        ];
        for (name, scope, expected) in cases {
            assert_eq!(visible(&client, &scope).await, expected, "{name}: {scope:?}");
        }
    }

    /// The fixture's lines on s1, as (line key, message, session, text); L6 is a NOQUEUE reject
    /// (forged a@one.example to z@two.example, unauthenticated) whose row shares its line key.
    const LINES: [(i64, Option<i64>, Option<i64>, &str); 7] = [
        (1, Some(1), Some(100), "Q1: client=mx.one.example[192.0.2.1]"),
        (2, None, Some(100), "connect from mx.one.example[192.0.2.1]"),
        (3, Some(5), Some(101), "Q5: client=forger.example[198.51.100.5]"),
        (4, None, Some(101), "connect from forger.example[198.51.100.5]"),
        (5, None, None, "daemon started -- version 3.7.11"),
        (
            6,
            None,
            Some(102),
            "NOQUEUE: reject: RCPT from forger.example[198.51.100.5]",
        ),
        (7, None, Some(102), "connect from forger.example[198.51.100.5]"),
    ];

    /// The keys of the fixture's lines `scope` sees.
    async fn visible_lines(client: &Client, scope: &Scope) -> Vec<i64> {
        selected(client, "SELECT e.line_key FROM log_events e", |q| {
            scope.log_events_condition(q, "e")
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lines_follow_what_they_belong_to() {
        let (client, s1, _) = scope_fixture().await;
        for (key, message, session, text) in LINES {
            client
                .execute(
                    "INSERT INTO log_events (ts, line_key, server_id, program, pid, queue_id, kind, message_uid,
                                             session_uid, raw)
                     VALUES ('2024-03-14T10:00:00Z', $1, $2, 'postfix/smtpd', 7, NULL, 'other', $3, $4, $5)",
                    &[&key, &s1, &message, &session, &text],
                )
                .await
                .unwrap();
        }
        client
            .execute(
                "INSERT INTO rejects (ts, line_key, server_id, program, pid, session_uid, action, source, stage,
                                      reason, sender, recipient)
                 VALUES ('2024-03-14T10:00:00Z', 6, $1, 'postfix/smtpd', 7, 102, 'reject', 'recipient', 'RCPT',
                         'Relay access denied', 'a@one.example', 'z@two.example')",
                &[&s1],
            )
            .await
            .unwrap();
        let one = group(&[s1], &["one.example"]);
        let two = group(&[s1], &["two.example"]);
        let cases: Vec<(&str, Scope, Vec<i64>)> = vec![
            ("admin", Scope::All, vec![1, 2, 3, 4, 5, 6, 7]),
            // Message 1 and its session; not the forged mail, its session or reject, nor the daemon.
            ("one.example", Scope::Groups(vec![one.clone()]), vec![1, 2]),
            // Recipients of 1 and 5 and of the reject: their lines and sessions.
            ("two.example", Scope::Groups(vec![two.clone()]), vec![1, 2, 3, 4, 6, 7]),
            (
                "owning s1 whole",
                Scope::Groups(vec![GroupScope {
                    whole_server_ids: vec![s1],
                    ..one.clone()
                }]),
                vec![1, 2, 3, 4, 5, 6, 7],
            ),
            // End users: the lines of their mail and rejects, not the sessions'.
            ("x@two.example", Scope::Addresses(vec!["x@two.example".into()]), vec![1]),
            ("z@two.example", Scope::Addresses(vec!["z@two.example".into()]), vec![6]),
            (
                "a@one.example, forged",
                Scope::Addresses(vec!["a@one.example".into()]),
                vec![1],
            ),
        ];
        for (name, scope, expected) in cases {
            assert_eq!(visible_lines(&client, &scope).await, expected, "{name}: {scope:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn servers_follow_the_groups() {
        let (client, s1, s2) = scope_fixture().await;
        let servers = |scope: Scope| {
            let client = &client;
            async move {
                let mut q = Query::default();
                let condition = scope.servers_condition(&mut q, "s.id");
                q.and(condition);
                let rows = client
                    .query(
                        &format!("SELECT s.id FROM servers s {} ORDER BY s.id", q.where_clause()),
                        &q.params(),
                    )
                    .await
                    .unwrap();
                rows.iter().map(|row| row.get::<_, i32>(0)).collect::<Vec<_>>()
            }
        };
        assert_eq!(servers(Scope::All).await, vec![s1, s2]);
        assert_eq!(servers(Scope::Groups(vec![group(&[s2], &["x"])])).await, vec![s2]);
        assert_eq!(
            servers(Scope::Groups(vec![group(&[s2], &[]), group(&[s1, s2], &[])])).await,
            vec![s1, s2]
        );
        assert_eq!(servers(Scope::Groups(vec![])).await, Vec::<i32>::new());
        assert_eq!(
            servers(Scope::Addresses(vec!["a@one.example".into()])).await,
            Vec::<i32>::new()
        );
    }
}
