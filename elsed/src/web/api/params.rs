//! Query-string parameters, read one by one so that a bad value is answered with 400 naming the
//! parameter and an unknown one is refused (a typo must not widen a search); paging and sorting
//! are [`crate::web::paging`]'s. Also the times of parameters and answers (RFC 3339).

use std::collections::HashSet;
use std::str::FromStr;
use std::time::SystemTime;

use omelse::parse::Timestamp;

use crate::message_query::{TextFilter, TextOp};
use crate::web::error::{ApiError, ApiResult};
use crate::web::paging::{PageParams, Sort, Window, MAX_PER_PAGE};

/// Longest value a parameter may have: longer ones are not a search anybody means.
pub const MAX_VALUE_CHARS: usize = 1000;

/// The parameters of one request; each is taken once, and [`Params::finish`] refuses the rest.
pub struct Params {
    pairs: Vec<(String, String)>,
    taken: HashSet<String>,
}

/// Parameters that say how to list, not what to find (left out of the search history).
const PRESENTATION: [&str; 4] = ["page", "per_page", "sort", "format"];

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Params {
            pairs,
            taken: HashSet::new(),
        }
    }

    /// The raw value of `name` (an empty value counts as absent: forms send empty fields).
    pub fn text(&mut self, name: &'static str) -> ApiResult<Option<String>> {
        self.taken.insert(name.to_owned());
        let mut values = self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let value = values.next();
        if values.next().is_some() {
            return Err(ApiError::bad_param(name, format!("{name} is given more than once")));
        }
        match value {
            Some(v) if v.chars().count() > MAX_VALUE_CHARS => Err(ApiError::bad_param(
                name,
                format!("{name} is longer than {MAX_VALUE_CHARS} characters"),
            )),
            Some(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_owned())),
            _ => Ok(None),
        }
    }

    /// A number (or anything `FromStr`) within `range`.
    pub fn number<T>(&mut self, name: &'static str, range: std::ops::RangeInclusive<T>) -> ApiResult<Option<T>>
    where
        T: FromStr + PartialOrd + std::fmt::Display,
    {
        let Some(text) = self.text(name)? else {
            return Ok(None);
        };
        match text.parse::<T>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::bad_param(
                name,
                format!("{name} must be a number from {} to {}", range.start(), range.end()),
            )),
        }
    }

    /// An RFC 3339 time (`2024-03-14T10:00:00Z`, any offset).
    pub fn time(&mut self, name: &'static str) -> ApiResult<Option<Timestamp>> {
        let Some(text) = self.text(name)? else {
            return Ok(None);
        };
        text.parse::<jiff::Timestamp>()
            .map(|t| Some(Timestamp(t.as_microsecond())))
            .map_err(|_| {
                ApiError::bad_param(
                    name,
                    format!("{name}: '{text}' is not an RFC 3339 time such as 2024-03-14T10:00:00Z"),
                )
            })
    }

    /// A text field and its operator, `<name>_op` (is, contains, starts, not).
    pub fn text_filter(&mut self, name: &'static str, op_name: &'static str) -> ApiResult<Option<TextFilter>> {
        let op = match self.text(op_name)? {
            None => TextOp::Is,
            Some(op) => TextOp::parse(&op).ok_or_else(|| {
                ApiError::bad_param(
                    op_name,
                    format!("{op_name} must be one of {}", TextOp::NAMES.join(", ")),
                )
            })?,
        };
        Ok(self.text(name)?.map(|value| TextFilter { op, value }))
    }

    /// One of `choices`.
    pub fn choice(&mut self, name: &'static str, choices: &[&str]) -> ApiResult<Option<String>> {
        match self.text(name)? {
            Some(value) if !choices.contains(&value.as_str()) => Err(ApiError::bad_param(
                name,
                format!("{name} must be one of {}", choices.join(", ")),
            )),
            other => Ok(other),
        }
    }

    /// `format=csv` asks for a CSV export instead of a page of JSON.
    pub fn wants_csv(&mut self) -> ApiResult<bool> {
        Ok(self.choice("format", &["json", "csv"])?.as_deref() == Some("csv"))
    }

    /// `page`, `per_page` and `sort` (`field` or `-field`, among `sorts`: field name and the SQL
    /// it orders by; `default` when absent).
    pub fn paging(&mut self, sorts: &[(&str, &str)], default: &str) -> ApiResult<Paging> {
        let window = PageParams {
            page: self.number("page", 1..=i64::MAX)?,
            per_page: self.number("per_page", 1..=MAX_PER_PAGE)?,
        }
        .window()?;
        let sort = Sort::read(self.text("sort")?.as_deref(), sorts, default)?;
        Ok(Paging { window, sort })
    }

    /// Refuses parameters nobody took: a misspelt filter would otherwise be silently ignored.
    pub fn finish(&self) -> ApiResult<()> {
        match self.pairs.iter().find(|(k, _)| !self.taken.contains(k)) {
            Some((name, _)) => Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("unknown parameter '{name}'"),
            )),
            None => Ok(()),
        }
    }

    /// What was searched for, for the caller's history: the parameters other than paging.
    pub fn search_terms(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = self
            .pairs
            .iter()
            .filter(|(k, v)| !PRESENTATION.contains(&k.as_str()) && !v.trim().is_empty())
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::Value::Object(map)
    }

    /// Every parameter name read so far (what a reader takes, for the tests of the document).
    #[cfg(test)]
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.taken.iter().cloned().collect()
    }

    /// Whether this request shows the first page of a search (what the history records).
    pub fn is_first_page(&self) -> bool {
        !self.pairs.iter().any(|(k, v)| k == "page" && v.trim() != "1")
    }
}

/// What every list endpoint reads besides its filters (for the document).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// 1-based page number (default 1; pages reach 100 000 rows at most).
    page: Option<i64>,
    /// Items per page (default 50, at most 500).
    per_page: Option<i64>,
    /// A field to sort by, `-field` for descending (each list names its own).
    sort: Option<String>,
    /// `json` (default) or `csv`: every matching row up to 100 000, as an attachment.
    format: Option<String>,
}

/// Which page, in which order.
#[derive(Debug, Clone)]
pub struct Paging {
    pub window: Window,
    pub sort: Sort,
}

impl Paging {
    /// See [`Sort::order_by`].
    pub fn order_by(&self, tie: &str) -> String {
        self.sort.order_by(tie)
    }
}

/// An RFC 3339 time parameter (`2024-03-14T10:00:00Z`) of a deserialized query, or a 400
/// naming `field`.
pub fn time_param(field: &'static str, value: Option<&str>) -> ApiResult<Option<SystemTime>> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<jiff::Timestamp>()
                .map(SystemTime::from)
                .map_err(|_| ApiError::bad_param(field, format!("{field}: not an RFC 3339 time: {v:?}")))
        })
        .transpose()
}

/// A time as the API writes it: RFC 3339 in UTC.
pub fn rfc3339(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t).map(|t| t.to_string()).unwrap_or_default()
}

/// A timestamp column as RFC 3339 text in UTC, as JSON shows it (for CSV exports).
pub fn sql_time(expr: &str) -> String {
    format!("to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn bad_values_are_refused_naming_the_parameter() {
        let sorts = [("first_seen", "m.first_seen"), ("size", "m.size")];
        let field = |pairs: &[(&str, &str)]| {
            let mut p = params(pairs);
            let result = (|| {
                p.paging(&sorts, "-first_seen")?;
                p.time("since")?;
                p.text_filter("sender", "sender_op")?;
                p.finish()
            })();
            result.map_err(|e| (e.field, e.message))
        };
        assert_eq!(field(&[("per_page", "501")]).unwrap_err().0, Some("per_page"));
        assert_eq!(field(&[("per_page", "0")]).unwrap_err().0, Some("per_page"));
        assert_eq!(field(&[("page", "-1")]).unwrap_err().0, Some("page"));
        assert_eq!(
            field(&[("page", "2001"), ("per_page", "50")]).unwrap_err().0,
            Some("page")
        );
        assert_eq!(field(&[("sort", "password")]).unwrap_err().0, Some("sort"));
        assert_eq!(field(&[("since", "yesterday")]).unwrap_err().0, Some("since"));
        assert_eq!(field(&[("sender_op", "like")]).unwrap_err().0, Some("sender_op"));
        let huge = "x".repeat(MAX_VALUE_CHARS + 1);
        assert_eq!(field(&[("sender", &huge)]).unwrap_err().0, Some("sender"));
        assert_eq!(
            field(&[("sender", "a"), ("sender", "b")]).unwrap_err().0,
            Some("sender")
        );
        let unknown = field(&[("sendr", "a")]).unwrap_err();
        assert!(unknown.1.contains("sendr"), "{unknown:?}");
        assert!(field(&[("sort", "-size"), ("page", "3"), ("sender", "")]).is_ok());
    }

    #[test]
    fn paging_orders_by_the_allowed_columns_only() {
        let mut p = params(&[("sort", "-size"), ("page", "3"), ("per_page", "20")]);
        let paging = p.paging(&[("size", "m.size")], "size").unwrap();
        assert_eq!(
            (paging.order_by("m.uid").as_str(), paging.window.offset()),
            ("ORDER BY m.size DESC, m.uid DESC", 40)
        );
        let mut p = params(&[]);
        let paging = p.paging(&[("first_seen", "m.first_seen")], "first_seen").unwrap();
        assert_eq!(
            (paging.order_by("m.uid").as_str(), paging.window.per_page),
            ("ORDER BY m.first_seen ASC, m.uid ASC", 50)
        );
    }

    #[test]
    fn times_both_ways() {
        let t = time_param("since", Some("2024-03-14T10:00:00Z")).unwrap().unwrap();
        assert_eq!(rfc3339(t), "2024-03-14T10:00:00Z");
        assert_eq!(time_param("since", Some("")).unwrap(), None);
        assert_eq!(time_param("until", Some("yesterday")).unwrap_err().field, Some("until"));
    }

    #[test]
    fn history_keeps_the_search_not_the_paging() {
        let p = params(&[("sender", "a@b"), ("page", "2"), ("format", "csv"), ("client", "")]);
        assert_eq!(p.search_terms(), serde_json::json!({"sender": "a@b"}));
        assert!(!p.is_first_page());
        assert!(params(&[("page", "1")]).is_first_page());
    }
}
