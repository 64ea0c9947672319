//! What a statistics request covers: a time range (whole hours, the rollups' grain), optional
//! narrowing (server, flow, domain, group), and the caller's scope, turned into conditions on
//! rollup rows.
//!
//! Scope: administrators see everything; a group member sees the rows of a server *and* a domain
//! of one of their groups (rollups carry both); an end user gets 403, because rollups count
//! traffic per server and domain, not per address, and an end user's own mail is a search, not a
//! dashboard. A message that touches two domains of the caller's groups counts under each of
//! them (rollups keep per-domain counts, not messages): group totals may exceed the number of
//! distinct messages for mail between a group's own domains.

use std::collections::HashMap;

use omelse::parse::Timestamp;
use tokio_postgres::Client;

use crate::access::{GroupScope, Scope};
use crate::sql::Query;
use crate::web::error::{ApiError, ApiResult};

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
/// Without `since`: the last day.
const DEFAULT_RANGE: i64 = DAY;
/// Longest range a screen may ask for (the rollups are kept as long as the data, but a year of
/// hourly points is no graph).
const MAX_RANGE: i64 = 400 * DAY;

/// The query string, by name.
pub type RawParams = HashMap<String, String>;

/// A parameter's value, `None` when absent or empty.
pub fn text<'a>(params: &'a RawParams, name: &str) -> Option<&'a str> {
    params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// One of `allowed`, or `default` when absent; 400 naming the parameter otherwise.
pub fn choice(
    params: &RawParams,
    name: &'static str,
    allowed: &[&'static str],
    default: &'static str,
) -> ApiResult<&'static str> {
    match text(params, name) {
        None => Ok(default),
        Some(value) => allowed
            .iter()
            .copied()
            .find(|a| *a == value)
            .ok_or_else(|| ApiError::bad_param(name, format!("{name} must be one of {}", allowed.join(", ")))),
    }
}

/// A whole number in `min..=max`, `default` when absent.
pub fn number(params: &RawParams, name: &'static str, min: i64, max: i64, default: i64) -> ApiResult<i64> {
    match text(params, name) {
        None => Ok(default),
        Some(value) => value
            .parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| ApiError::bad_param(name, format!("{name} must be a whole number from {min} to {max}"))),
    }
}

/// An RFC 3339 time, `None` when absent; 400 naming the parameter otherwise.
pub fn time(params: &RawParams, name: &'static str) -> ApiResult<Option<Timestamp>> {
    text(params, name)
        .map(|value| {
            value
                .parse::<jiff::Timestamp>()
                .map(|t| Timestamp(t.as_microsecond()))
                .map_err(|_| {
                    ApiError::bad_param(name, format!("{name} must be an RFC 3339 time (2024-03-14T10:00:00Z)"))
                })
        })
        .transpose()
}

/// The range and narrowing of one request, within the caller's scope.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Whole hours: `since` rounded down, `until` rounded up.
    pub since: Timestamp,
    pub until: Timestamp,
    pub server: Option<i32>,
    pub flow: Option<String>,
    pub domain: Option<String>,
    /// A group member's (server, domain) pairs, parallel arrays; `None` for everything.
    pub pairs: Option<(Vec<i32>, Vec<String>)>,
    /// With `pairs`: the servers the member's groups own whole. Counts no domain applies to
    /// (postscreen: clients of every customer) are theirs only, as raw lines are.
    pub whole_servers: Vec<i32>,
}

impl Filter {
    /// Reads `since`, `until`, `server`, `flow`, `domain`, `group`; 403 for end users.
    pub async fn new(client: &Client, scope: &Scope, params: &RawParams) -> ApiResult<Filter> {
        let groups = match scope {
            Scope::All => None,
            Scope::Groups(groups) => Some(groups.clone()),
            Scope::Addresses(_) => return Err(ApiError::forbidden()),
        };
        let until = time(params, "until")?.unwrap_or_else(Timestamp::now);
        let since = time(params, "since")?.unwrap_or(Timestamp(until.0 - DEFAULT_RANGE));
        let (since, until) = (
            Timestamp(since.0.div_euclid(HOUR) * HOUR),
            Timestamp(ceil(until.0, HOUR)),
        );
        if since.0 >= until.0 {
            return Err(ApiError::bad_param("until", "until must be after since"));
        }
        if until.0 - since.0 > MAX_RANGE {
            return Err(ApiError::bad_param("since", "the range is longer than 400 days"));
        }
        let server = text(params, "server")
            .map(|s| {
                s.parse::<i32>()
                    .map_err(|_| ApiError::bad_param("server", "server must be a server id"))
            })
            .transpose()?;
        let flow = match text(params, "flow") {
            None => None,
            Some(_) => Some(
                choice(
                    params,
                    "flow",
                    &["inbound", "outbound", "internal", "relayed", "unknown"],
                    "",
                )?
                .to_owned(),
            ),
        };
        let domain = text(params, "domain").map(|d| d.trim_start_matches('@').to_lowercase());
        if let Some(domain) = &domain {
            let known: bool = client
                .query_one("SELECT $1 = ANY(else_group_domains())", &[domain])
                .await?
                .get(0);
            if !known {
                return Err(ApiError::bad_param(
                    "domain",
                    "statistics are kept per domain for the groups' domains only: add it to a group, or use the report",
                ));
            }
        }
        let groups = match text(params, "group") {
            None => groups,
            Some(id) => {
                let id = id
                    .parse::<i64>()
                    .map_err(|_| ApiError::bad_param("group", "group must be a group id"))?;
                let group = load_group(client, id).await?;
                // Narrowing only: a group outside the caller's groups leaves nothing.
                Some(match groups {
                    None => vec![group],
                    Some(own) => own.iter().map(|g| intersect(g, &group)).collect(),
                })
            }
        };
        Ok(Filter {
            since,
            until,
            server,
            flow,
            domain,
            whole_servers: groups.as_deref().map(Scope::whole_servers).unwrap_or_default(),
            pairs: groups.map(|g| Scope::pairs(&g)),
        })
    }

    /// Rows counted per domain are read when a domain matters (a filter or a group's scope);
    /// otherwise the rows that count every event once.
    pub fn by_domain(&self) -> bool {
        self.domain.is_some() || self.pairs.is_some()
    }

    /// Conditions on a rollup row aliased `t` (columns server_id, flow, by_domain, domain) other
    /// than time. `has_domains`: false for counts that no domain applies to (postscreen), which a
    /// group member sees for the servers their groups own whole.
    pub fn rows(&self, q: &mut Query, t: &str, has_domains: bool) -> String {
        let mut conditions = Vec::new();
        if let Some(server) = self.server {
            conditions.push(format!("{t}.server_id = {}", q.bind(server)));
        }
        if let Some(flow) = &self.flow {
            conditions.push(format!("{t}.flow = {}", q.bind(flow.clone())));
        }
        if !has_domains {
            conditions.push(format!("NOT {t}.by_domain"));
            if self.pairs.is_some() {
                conditions.push(format!(
                    "{t}.server_id = ANY({}::int[])",
                    q.bind(self.whole_servers.clone())
                ));
            }
            if self.domain.is_some() {
                conditions.push("FALSE".into());
            }
            return conditions.join(" AND ");
        }
        conditions.push(format!("{}{t}.by_domain", if self.by_domain() { "" } else { "NOT " }));
        if let Some(domain) = &self.domain {
            conditions.push(format!("{t}.domain = {}", q.bind(domain.clone())));
        }
        if let Some((servers, domains)) = &self.pairs {
            let (s, d) = (q.bind(servers.clone()), q.bind(domains.clone()));
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM unnest({s}::int[], {d}::text[]) AS pair(server_id, domain)
                         WHERE pair.server_id = {t}.server_id AND pair.domain = {t}.domain)"
            ));
        }
        conditions.join(" AND ")
    }

    /// The range split for the keyed rollups: whole UTC days from `stats_daily` (`days`), the
    /// hours before and after them from `stats_hourly` (`hours`, two ranges). Hours are kept for
    /// today only: a partial past day at either end counts whole. Binds into `q` and returns the
    /// two time conditions.
    pub fn day_and_hours(&self, q: &mut Query, day: &str, hour: &str) -> (String, String) {
        let hot = Timestamp::now().0.div_euclid(DAY) * DAY;
        let since_day = self.since.0.div_euclid(DAY) * DAY;
        let until_day = ceil(self.until.0, DAY);
        let d0 = if since_day < hot {
            since_day
        } else {
            ceil(self.since.0, DAY)
        };
        let d1 = if until_day <= hot {
            until_day
        } else {
            self.until.0.div_euclid(DAY) * DAY
        };
        // No whole day: everything from the hours.
        let (d0, d1) = if d0 >= d1 {
            (self.until.0, self.until.0)
        } else {
            (d0, d1)
        };
        let (since, until) = (q.bind(self.since), q.bind(self.until));
        let (d0, d1) = (q.bind(Timestamp(d0)), q.bind(Timestamp(d1)));
        (
            format!("{day} >= {d0} AND {day} < {d1}"),
            format!("(({hour} >= {since} AND {hour} < {d0}) OR ({hour} >= {d1} AND {hour} < {until}))"),
        )
    }
}

fn ceil(t: i64, unit: i64) -> i64 {
    t.div_euclid(unit) * unit + if t.rem_euclid(unit) > 0 { unit } else { 0 }
}

fn intersect(a: &GroupScope, b: &GroupScope) -> GroupScope {
    GroupScope {
        server_ids: a
            .server_ids
            .iter()
            .filter(|s| b.server_ids.contains(s))
            .copied()
            .collect(),
        domains: a.domains.iter().filter(|d| b.domains.contains(d)).cloned().collect(),
        whole_server_ids: a
            .whole_server_ids
            .iter()
            .filter(|s| b.server_ids.contains(s))
            .copied()
            .collect(),
    }
}

/// A group's servers and domains (tables of the accounts, migration 5); 404 when unknown.
async fn load_group(client: &Client, id: i64) -> ApiResult<GroupScope> {
    let row = client
        .query_opt(
            "SELECT ARRAY(SELECT server_id FROM group_servers WHERE group_id = g.id),
                    ARRAY(SELECT domain FROM group_domains WHERE group_id = g.id)
             FROM groups g WHERE g.id = $1",
            &[&id],
        )
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(GroupScope {
        server_ids: row.get(0),
        domains: row.get(1),
        ..Default::default()
    })
}
