//! How every list of the API pages (docs/api.md, "Conventions"): `page` (1-based) and `per_page`
//! (default 50, at most 500) in, `sort` among the list's own fields, and `{total, total_capped,
//! page, per_page, items}` out, `total` counted no further than [`COUNT_CAP`]. One module so that
//! the search, the NDRs, the greylisting decisions and the administrators' lists page alike.

use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, Row};

use super::error::{ApiError, ApiResult};
use crate::sql::Query;

pub const DEFAULT_PER_PAGE: i64 = 50;
/// `per_page` at most.
pub const MAX_PER_PAGE: i64 = 500;
/// The deepest a page may reach (and the rows of a CSV export): further, narrow the search.
pub const MAX_ROWS: i64 = 100_000;
/// Counting stops here: `total` is then `COUNT_CAP - 1` with `total_capped` (a precise total of
/// millions of rows costs more than the page itself).
pub const COUNT_CAP: i64 = 10_001;

/// `page` and `per_page` as a request gives them (checked by [`PageParams::window`]).
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1-based page number (default 1).
    pub page: Option<i64>,
    /// Items per page (default 50, at most 500).
    pub per_page: Option<i64>,
}

/// A checked page: what to put in LIMIT and OFFSET, and what to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub page: i64,
    pub per_page: i64,
}

impl PageParams {
    pub fn window(self) -> ApiResult<Window> {
        let page = self.page.unwrap_or(1);
        if page < 1 {
            return Err(ApiError::bad_param("page", "page starts at 1"));
        }
        let per_page = self.per_page.unwrap_or(DEFAULT_PER_PAGE);
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(ApiError::bad_param(
                "per_page",
                format!("per_page must be a number from 1 to {MAX_PER_PAGE}"),
            ));
        }
        if (page - 1).saturating_mul(per_page) >= MAX_ROWS {
            return Err(ApiError::bad_param(
                "page",
                format!("pages reach {MAX_ROWS} rows at most: narrow the search or export it as CSV"),
            ));
        }
        Ok(Window { page, per_page })
    }
}

impl Window {
    pub fn limit(&self) -> i64 {
        self.per_page
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.per_page
    }

    /// This page of a list of `total` (capped or not) rows.
    pub fn page<T>(&self, (total, total_capped): (i64, bool), items: Vec<T>) -> Page<T> {
        Page {
            total,
            total_capped,
            page: self.page,
            per_page: self.per_page,
            items,
        }
    }
}

/// One page of a list, as every list endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub total: i64,
    /// `total` stopped counting at 10 000: there are more.
    pub total_capped: bool,
    pub page: i64,
    pub per_page: i64,
    pub items: Vec<T>,
}

impl<T> Page<T> {
    /// The same page with other items (the rows turned into what the client sees).
    pub fn with_items<U>(self, items: Vec<U>) -> Page<U> {
        Page {
            total: self.total,
            total_capped: self.total_capped,
            page: self.page,
            per_page: self.per_page,
            items,
        }
    }
}

/// The order of a list: a column among the list's allowed ones, and the direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub column: String,
    pub descending: bool,
}

impl Sort {
    /// `sort` (`field` or `-field`, among `sorts`: field name and the SQL it orders by;
    /// `default` when absent), or 400 naming `sort`.
    pub fn read(sort: Option<&str>, sorts: &[(&str, &str)], default: &str) -> ApiResult<Sort> {
        let sort = sort.unwrap_or(default);
        let (field, descending) = match sort.strip_prefix('-') {
            Some(field) => (field, true),
            None => (sort, false),
        };
        match sorts.iter().find(|(name, _)| *name == field) {
            Some((_, column)) => Ok(Sort {
                column: (*column).to_owned(),
                descending,
            }),
            None => {
                let names: Vec<&str> = sorts.iter().map(|(name, _)| *name).collect();
                Err(ApiError::bad_param(
                    "sort",
                    format!("sort must be one of {} (with - for descending)", names.join(", ")),
                ))
            }
        }
    }

    /// `ORDER BY` the sort column, then `tie` (a unique key, so that pages never overlap), both
    /// in the asked direction.
    pub fn order_by(&self, tie: &str) -> String {
        let direction = if self.descending { "DESC" } else { "ASC" };
        format!("ORDER BY {} {direction}, {tie} {direction}", self.column)
    }
}

/// How many rows `from_where` (a `FROM … WHERE …` of `q`) has, counting no further than
/// [`COUNT_CAP`].
pub async fn count_capped(client: &Client, from_where: &str, q: &Query) -> ApiResult<(i64, bool)> {
    let sql = format!("SELECT count(*) FROM (SELECT 1 {from_where} LIMIT {COUNT_CAP}) AS capped");
    let n: i64 = client.query_one(&sql, &q.params()).await?.get(0);
    Ok(if n >= COUNT_CAP {
        (COUNT_CAP - 1, true)
    } else {
        (n, false)
    })
}

/// The page `window` of `SELECT columns from_where order_by` (`q` holds its parameters), with the
/// capped total.
pub async fn page_of<T>(
    client: &Client,
    columns: &str,
    from_where: &str,
    mut q: Query,
    window: Window,
    order_by: &str,
    map: impl Fn(&Row) -> T,
) -> ApiResult<Page<T>> {
    let total = count_capped(client, from_where, &q).await?;
    let limit = q.bind(window.limit());
    let offset = q.bind(window.offset());
    let sql = format!("SELECT {columns} {from_where} {order_by} LIMIT {limit} OFFSET {offset}");
    let items = client.query(&sql, &q.params()).await?.iter().map(map).collect();
    Ok(window.page(total, items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_checked_and_offset() {
        let w = |page, per_page| PageParams { page, per_page }.window();
        let first = w(None, None).unwrap();
        assert_eq!((first.page, first.per_page, first.offset()), (1, 50, 0));
        let third = w(Some(3), Some(20)).unwrap();
        assert_eq!((third.limit(), third.offset()), (20, 40));
        for (page, per_page, field) in [
            (Some(0), None, "page"),
            (Some(-1), None, "page"),
            (None, Some(0), "per_page"),
            (None, Some(501), "per_page"),
            (Some(2001), Some(50), "page"),
            (Some(i64::MAX), Some(500), "page"),
        ] {
            assert_eq!(
                w(page, per_page).unwrap_err().field,
                Some(field),
                "{page:?} {per_page:?}"
            );
        }
        assert!(w(Some(2000), Some(50)).is_ok());
    }

    #[test]
    fn lists_sort_by_their_allowed_columns_only() {
        let sorts = [("size", "m.size"), ("first_seen", "m.first_seen")];
        let sort = Sort::read(Some("-size"), &sorts, "first_seen").unwrap();
        assert_eq!(sort.order_by("m.uid"), "ORDER BY m.size DESC, m.uid DESC");
        let sort = Sort::read(None, &sorts, "first_seen").unwrap();
        assert_eq!(sort.order_by("m.uid"), "ORDER BY m.first_seen ASC, m.uid ASC");
        let e = Sort::read(Some("password"), &sorts, "size").unwrap_err();
        assert_eq!(e.field, Some("sort"));
        assert!(e.message.contains("size, first_seen"), "{}", e.message);
    }
}
