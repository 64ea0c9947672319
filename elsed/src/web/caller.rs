//! Who is asking, and what they may see.
//!
//! A [`Caller`] is what the session extractor (in `auth`) hands every handler. Its [`Scope`] is
//! turned into SQL conditions here, in one place, so that every query of every screen narrows the
//! same way: an administrator sees everything; a group member sees the messages that touch a
//! server *and* a domain of one same group; an end user sees mail from or to their addresses.

use crate::sql::Query;

/// The kinds of account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, and the active operations (users, groups, servers, queue actions, whitelists).
    Admin,
    /// Messages of their groups' servers and domains.
    User,
    /// Mail from or to their own addresses (the original's "Messaging Center").
    Enduser,
}

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

/// The authenticated account behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: i64,
    pub login: String,
    pub role: Role,
    pub scope: Scope,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

impl Scope {
    /// The (server, domain) pairs a group member may see, as two parallel arrays for `unnest`.
    fn pairs(groups: &[GroupScope]) -> (Vec<i32>, Vec<String>) {
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

    /// A condition on a `messages` row aliased `m`: the message is visible. Binds into `q`.
    pub fn messages_condition(&self, q: &mut Query, m: &str) -> String {
        match self {
            Scope::All => "TRUE".into(),
            Scope::Groups(groups) => {
                let (servers, domains) = Self::pairs(groups);
                let servers = q.bind(servers);
                let domains = q.bind(domains);
                format!(
                    "EXISTS (SELECT 1 FROM unnest({servers}::int[], {domains}::text[]) AS scope(server_id, domain)
                             WHERE scope.server_id = {m}.server_id
                               AND (scope.domain = else_domain({m}.sender)
                                    OR EXISTS (SELECT 1 FROM recipients scope_r
                                               WHERE scope_r.message_started_at = {m}.started_at
                                                 AND scope_r.message_uid = {m}.uid
                                                 AND scope.domain IN (else_domain(scope_r.address),
                                                                      else_domain(scope_r.orig_address)))))"
                )
            }
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
