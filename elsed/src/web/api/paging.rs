//! What list endpoints share (docs/api.md, "Conventions"): `page`/`per_page` in, `{total, page,
//! per_page, items}` out, and RFC 3339 times both ways.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::web::error::{ApiError, ApiResult};

/// Most rows one page may ask for.
pub const MAX_PER_PAGE: i64 = 500;
const DEFAULT_PER_PAGE: i64 = 50;

/// `page` (1-based) and `per_page` of a list request.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Paging {
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

impl Paging {
    /// `(page, per_page, offset)`, or the parameter that is out of range.
    pub fn resolve(self) -> ApiResult<(i64, i64, i64)> {
        let page = self.page.unwrap_or(1);
        if page < 1 {
            return Err(ApiError::bad_param("page", "page starts at 1"));
        }
        let per_page = self.per_page.unwrap_or(DEFAULT_PER_PAGE);
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(ApiError::bad_param(
                "per_page",
                format!("per_page is 1 to {MAX_PER_PAGE}"),
            ));
        }
        let offset = (page - 1)
            .checked_mul(per_page)
            .ok_or_else(|| ApiError::bad_param("page", "page is too large"))?;
        Ok((page, per_page, offset))
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Page<T> {
    pub total: i64,
    /// `total` stopped counting at [`COUNT_CAP`]: there are more.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub total_capped: bool,
    pub page: i64,
    pub per_page: i64,
    pub items: Vec<T>,
}

/// Where counting stops on lists that may be long (a busy MX logs millions of decisions a day).
pub const COUNT_CAP: i64 = 10_000;

/// An RFC 3339 time parameter (`2024-03-14T10:00:00Z`), or a 400 naming `field`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_bounds_and_times() {
        let p = |page, per_page| Paging { page, per_page }.resolve();
        assert_eq!(p(None, None).unwrap(), (1, 50, 0));
        assert_eq!(p(Some(3), Some(20)).unwrap(), (3, 20, 40));
        assert_eq!(p(Some(0), None).unwrap_err().field, Some("page"));
        assert_eq!(p(None, Some(501)).unwrap_err().field, Some("per_page"));
        assert_eq!(p(Some(i64::MAX), Some(500)).unwrap_err().field, Some("page"));
        let t = time_param("since", Some("2024-03-14T10:00:00Z")).unwrap().unwrap();
        assert_eq!(rfc3339(t), "2024-03-14T10:00:00Z");
        assert_eq!(time_param("since", Some("")).unwrap(), None);
        assert_eq!(time_param("until", Some("yesterday")).unwrap_err().field, Some("until"));
    }
}
