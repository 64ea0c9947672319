//! What a caller may see, as SQL.
//!
//! A [`Scope`] is turned into SQL conditions here, in one place, so that every query of every
//! screen (and every scheduled report) narrows the same way: an administrator sees everything; a
//! group member sees the messages that touch a server *and* a domain of one same group; an end
//! user sees mail from or to their addresses.

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupScope {
    pub server_ids: Vec<i32>,
    pub domains: Vec<String>,
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

    /// A condition on a server id column (`s.id`, `l.server_id`): the caller may see that server
    /// (administrators: all; group members: their groups' servers; end users: none, their
    /// view is their mail, not the fleet). Binds into `q`.
    pub fn servers_condition(&self, q: &mut Query, column: &str) -> String {
        match self {
            Scope::All => "TRUE".into(),
            Scope::Groups(groups) => {
                let mut ids: Vec<i32> = groups.iter().flat_map(|g| g.server_ids.iter().copied()).collect();
                ids.sort_unstable();
                ids.dedup();
                let ids = q.bind(ids);
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

    /// A condition on a `messages` row aliased `m`: the message is visible. Binds into `q`.
    pub fn messages_condition(&self, q: &mut Query, m: &str) -> String {
        match self {
            Scope::All => "TRUE".into(),
            Scope::Groups(groups) => Self::pairs_condition(
                q,
                groups,
                &format!("{m}.server_id"),
                &format!(
                    "(scope.domain = else_domain({m}.sender)
                      OR EXISTS (SELECT 1 FROM recipients scope_r
                                 WHERE scope_r.message_started_at = {m}.started_at
                                   AND scope_r.message_uid = {m}.uid
                                   AND scope.domain IN (else_domain(scope_r.address),
                                                        else_domain(scope_r.orig_address))))"
                ),
            ),
            Scope::Addresses(addresses) => {
                let addresses = q.bind(addresses.clone());
                format!(
                    "(lower({m}.sender) = ANY({addresses}::text[])
                      OR EXISTS (SELECT 1 FROM recipients scope_r
                                 WHERE scope_r.message_started_at = {m}.started_at
                                   AND scope_r.message_uid = {m}.uid
                                   AND (lower(scope_r.address) = ANY({addresses}::text[])
                                        OR lower(scope_r.orig_address) = ANY({addresses}::text[]))))"
                )
            }
        }
    }

    /// A condition on a `rejects` row aliased `r`: a group member sees the decisions taken on one
    /// of a group's servers for a sender or recipient of that group's domains; an end user those
    /// for their addresses. Binds into `q`.
    pub fn rejects_condition(&self, q: &mut Query, r: &str) -> String {
        match self {
            Scope::All => "TRUE".into(),
            Scope::Groups(groups) => Self::pairs_condition(
                q,
                groups,
                &format!("{r}.server_id"),
                &format!("scope.domain IN (else_domain({r}.recipient), else_domain({r}.sender))"),
            ),
            Scope::Addresses(addresses) => {
                let addresses = q.bind(addresses.clone());
                format!(
                    "(lower({r}.recipient) = ANY({addresses}::text[]) OR lower({r}.sender) = ANY({addresses}::text[]))"
                )
            }
        }
    }

    /// A condition on a `log_events` row aliased `e`: a group member sees every line of the
    /// group's servers (what the original's Logs tab showed them); an end user only the lines of
    /// messages they may see. Binds into `q`.
    pub fn log_events_condition(&self, q: &mut Query, e: &str) -> String {
        match self {
            Scope::All => "TRUE".into(),
            Scope::Groups(groups) => {
                let mut servers: Vec<i32> = groups.iter().flat_map(|g| g.server_ids.iter().copied()).collect();
                servers.sort_unstable();
                servers.dedup();
                format!("{e}.server_id = ANY({}::int[])", q.bind(servers))
            }
            Scope::Addresses(_) => {
                let visible = self.messages_condition(q, "scope_m");
                format!(
                    "EXISTS (SELECT 1 FROM messages scope_m
                             WHERE scope_m.uid = {e}.message_uid AND scope_m.server_id = {e}.server_id AND {visible})"
                )
            }
        }
    }

    /// A condition on an `ndrs` row aliased `n`: the NDR is visible. Binds into `q`.
    ///
    /// A group member sees the NDRs reported by one of the group's servers about mail whose
    /// original sender or a failed recipient is in a domain of that same group, and the NDRs
    /// linked to a message they may see. An end user sees the NDRs whose original sender or a
    /// failed recipient is one of their addresses (not, through a shared message, the failures
    /// of other recipients).
    pub fn ndrs_condition(&self, q: &mut Query, n: &str) -> String {
        let failed_recipient = |cond: &str| {
            format!(
                "EXISTS (SELECT 1 FROM ndr_recipients scope_nr
                         WHERE scope_nr.ndr_received_at = {n}.received_at AND scope_nr.ndr_id = {n}.id
                           AND {cond})"
            )
        };
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
                                AND (scope.domain = else_domain({n}.postfix_sender) OR {recipient}))
                      OR EXISTS (SELECT 1 FROM messages scope_m
                                 WHERE scope_m.started_at = {n}.message_started_at AND scope_m.uid = {n}.message_uid
                                   AND {message}))"
                )
            }
            Scope::Addresses(addresses) => {
                let addresses = q.bind(addresses.clone());
                let recipient = failed_recipient(&format!(
                    "(lower(scope_nr.final_recipient) = ANY({addresses}::text[])
                      OR lower(scope_nr.original_recipient) = ANY({addresses}::text[]))"
                ));
                format!("(lower({n}.postfix_sender) = ANY({addresses}::text[]) OR {recipient})")
            }
        }
    }

    /// A condition on a `greylist_decisions` row aliased `d`: the decision is visible. Binds
    /// into `q`.
    ///
    /// Greylisting is shared by every MX (the decisions log names the policy service, not the
    /// smtpd that asked), so a group member sees the decisions about mail to or from the group's
    /// domains, whatever the server; an end user those about mail to or from their addresses.
    pub fn greylist_condition(&self, q: &mut Query, d: &str) -> String {
        match self {
            Scope::All => "TRUE".into(),
            Scope::Groups(groups) => {
                let domains: Vec<String> = groups.iter().flat_map(|g| g.domains.iter().cloned()).collect();
                let domains = q.bind(domains);
                format!("({d}.recipient_domain = ANY({domains}::text[]) OR else_domain({d}.sender) = ANY({domains}::text[]))")
            }
            Scope::Addresses(addresses) => {
                let addresses = q.bind(addresses.clone());
                format!("({d}.recipient = ANY({addresses}::text[]) OR lower({d}.sender) = ANY({addresses}::text[]))")
            }
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
    /// 1: s1, a@one.example → x@two.example
    /// 2: s2, b@two.example → c@one.example
    /// 3: s1, <> → d@three.example (originally e@one.example, a forward)
    /// 4: s2, Z@Three.example → w@three.example
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
        // uid, server, sender, recipient, original recipient
        type Message<'a> = (i64, i32, Option<&'a str>, &'a str, Option<&'a str>);
        let messages: [Message; 4] = [
            (1, s1, Some("a@one.example"), "x@two.example", None),
            (2, s2, Some("b@two.example"), "c@one.example", None),
            (3, s1, None, "d@three.example", Some("e@one.example")),
            (4, s2, Some("Z@Three.example"), "w@three.example", None),
        ];
        for (uid, server, sender, recipient, orig) in messages {
            client
                .execute(
                    "INSERT INTO messages (started_at, uid, server_id, queue_id, first_seen, last_seen, sender,
                                           origin, state, closed, version)
                     VALUES ('2024-03-14T10:00:00Z', $1, $2, 'Q' || $1::bigint::text, '2024-03-14T10:00:00Z',
                             '2024-03-14T10:00:01Z', $3, 'smtpd', 'delivered', true, 1)",
                    &[&uid, &server, &sender],
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

    /// The uids of the messages `scope` sees.
    pub(crate) async fn visible(client: &Client, scope: &Scope) -> Vec<i64> {
        let mut q = Query::default();
        let condition = scope.messages_condition(&mut q, "m");
        q.and(condition);
        client
            .query(
                &format!("SELECT m.uid FROM messages m {} ORDER BY m.uid", q.where_clause()),
                &q.params(),
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    fn group(server_ids: &[i32], domains: &[&str]) -> GroupScope {
        GroupScope {
            server_ids: server_ids.to_vec(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_scope_sees_exactly_its_messages() {
        let (client, s1, s2) = scope_fixture().await;
        let addresses = |list: &[&str]| Scope::Addresses(list.iter().map(|a| a.to_string()).collect());
        let cases: Vec<(&str, Scope, Vec<i64>)> = vec![
            ("admin", Scope::All, vec![1, 2, 3, 4]),
            // Sender's domain, and a recipient's original address, on the group's server.
            (
                "s1 × one",
                Scope::Groups(vec![group(&[s1], &["one.example"])]),
                vec![1, 3],
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
            ("sender", addresses(&["a@one.example"]), vec![1]),
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
