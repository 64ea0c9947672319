//! What a report covers: a time range, one server, one domain. Each section applies the scope to
//! its own table (a message by when it arrived, a delivery or a reject by when it happened).

use omelse::parse::Timestamp;
use tokio_postgres::types::ToSql;

/// The range and filters given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub host: Option<String>,
    /// Lower case; matched against the sender's and the recipients' domains.
    pub domain: Option<String>,
    /// Only this server (by id, as the web API names servers).
    pub server_id: Option<i32>,
    /// A group member's view: (server, domain) pairs, as two parallel arrays. A row is in it
    /// when its server is one of the pairs' with a domain of the same pair; a section without
    /// domains (smtpd connections, warnings: what belongs to no message) is narrowed to
    /// `whole_servers`.
    pub pairs: Option<(Vec<i32>, Vec<String>)>,
    /// With `pairs`: the servers the group owns whole (see `access::Scope::log_events_condition`).
    pub whole_servers: Vec<i32>,
}

/// Where the scope's columns are in one query.
pub struct Columns<'a> {
    pub time: &'a str,
    pub server: &'a str,
    /// A condition on the domain, `{d}` standing for it; `None`: the domain does not apply.
    pub domain: Option<String>,
}

/// One query's bound parameters: every value of the scope reaches PostgreSQL as a parameter.
#[derive(Default)]
pub struct Params(Vec<Box<dyn ToSql + Sync + Send>>);

impl Params {
    pub fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.0.push(Box::new(value));
        format!("${}", self.0.len())
    }

    pub fn as_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

impl Scope {
    /// The conditions of the scope on `columns`, `TRUE` when there are none.
    pub fn filter(&self, params: &mut Params, columns: &Columns<'_>) -> String {
        let mut conditions = Vec::new();
        if let Some(since) = self.since {
            conditions.push(format!("{} >= {}", columns.time, params.bind(since)));
        }
        if let Some(until) = self.until {
            conditions.push(format!("{} < {}", columns.time, params.bind(until)));
        }
        if let Some(host) = &self.host {
            conditions.push(format!(
                "{} IN (SELECT id FROM servers WHERE name = {})",
                columns.server,
                params.bind(host.clone())
            ));
        }
        if let Some(server_id) = self.server_id {
            conditions.push(format!("{} = {}", columns.server, params.bind(server_id)));
        }
        if let Some((servers, domains)) = &self.pairs {
            conditions.push(match &columns.domain {
                Some(condition) => format!(
                    "EXISTS (SELECT 1 FROM unnest({}::int[], {}::text[]) AS pair(server_id, domain)
                             WHERE pair.server_id = {} AND ({}))",
                    params.bind(servers.clone()),
                    params.bind(domains.clone()),
                    columns.server,
                    condition.replace("{d}", "pair.domain")
                ),
                None => format!(
                    "{} = ANY({}::int[])",
                    columns.server,
                    params.bind(self.whole_servers.clone())
                ),
            });
        }
        if let Some(domain) = &self.domain {
            if let Some(condition) = &columns.domain {
                let domain = params.bind(domain.clone());
                conditions.push(format!("({})", condition.replace("{d}", &domain)));
            }
        }
        if conditions.is_empty() {
            "TRUE".to_owned()
        } else {
            conditions.join(" AND ")
        }
    }
}
