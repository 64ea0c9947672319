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
}
