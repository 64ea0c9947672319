//! How every list of the API pages (docs/api.md, "Conventions"): `page` (1-based) and `per_page`
//! (default 50, at most 500) in, `sort` among the list's own fields, and `{total, total_capped,
//! page, per_page, items}` out, `total` counted no further than [`COUNT_CAP`] nor for longer than
//! [`COUNT_TIME_BOX`]. One module so that the search, the NDRs, the greylisting decisions and the
//! administrators' lists page alike.

use futures_util::StreamExt;
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
/// Counting stops after this long too: a group member who sees a small share of a big table
/// (the raw lines of a shared server) would otherwise have every row checked against the scope
/// for the count alone. The page is still found; `total` then says what the page shows
/// (`total_capped` when more rows follow it).
pub const COUNT_TIME_BOX: std::time::Duration = std::time::Duration::from_millis(1000);

/// `page` and `per_page` as a request gives them (checked by [`PageParams::window`]).
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1-based page number (default 1).
    pub page: Option<i64>,
    /// Items per page (default 50, at most 500).
    pub per_page: Option<i64>,
}

/// A checked page: what to put in LIMIT and OFFSET, how long its total may take to count, and
/// what to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub page: i64,
    pub per_page: i64,
    /// [`COUNT_TIME_BOX`] unless the list says otherwise ([`Window::counting_within`]).
    pub count_time_box: std::time::Duration,
    /// How long the page itself may be searched for ([`Window::searching_within`]); `None`: as
    /// long as the session's `statement_timeout`.
    pub page_time_box: Option<std::time::Duration>,
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
        Ok(Window {
            page,
            per_page,
            count_time_box: COUNT_TIME_BOX,
            page_time_box: None,
        })
    }
}

impl Window {
    /// The same page, its total counted for `time_box` at most (zero: not counted, the total
    /// is what the page shows, [`Window::total_seen`]).
    pub fn counting_within(self, time_box: std::time::Duration) -> Window {
        Window {
            count_time_box: time_box,
            ..self
        }
    }

    /// The same page, searched for `time_box` at most: then the rows found so far are the
    /// page, marked [`Page::cut_short`] (a search never runs for minutes; see
    /// [`rows_within`]).
    pub fn searching_within(self, time_box: std::time::Duration) -> Window {
        Window {
            page_time_box: Some(time_box),
            ..self
        }
    }

    pub fn limit(&self) -> i64 {
        self.per_page
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.per_page
    }

    /// The total when it could not be counted in time, from this page's rows and whether a row
    /// follows them (`more`): exact when none does, else "more than the rows up to here"
    /// (`total_capped`).
    pub fn total_seen(&self, items: usize, more: bool) -> (i64, bool) {
        (self.offset() + items as i64, more)
    }

    /// This page of a list of `total` (capped or not) rows.
    pub fn page<T>(&self, (total, total_capped): (i64, bool), items: Vec<T>) -> Page<T> {
        Page {
            total,
            total_capped,
            cut_short: false,
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
    /// `total` stopped counting at 10 000, or after its time: there are more.
    pub total_capped: bool,
    /// The search stopped after `[web] search_time_limit_ms`: `items` are the first rows it
    /// found in the asked order (a true beginning of the page, maybe fewer than `per_page`),
    /// more may exist, and `total` counts only what was seen. Narrow the search or its time range.
    pub cut_short: bool,
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
            cut_short: self.cut_short,
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
/// [`COUNT_CAP`]; `None` when counting took longer than `time_box`.
pub async fn count_capped(
    client: &Client,
    from_where: &str,
    q: &Query,
    time_box: std::time::Duration,
) -> ApiResult<Option<(i64, bool)>> {
    let sql = format!("SELECT count(*) FROM (SELECT 1 {from_where} LIMIT {COUNT_CAP}) AS capped");
    let statement = client.prepare(&sql).await?;
    let params = q.params();
    let n: i64 = match time_boxed(client, time_box, client.query_one(&statement, &params)).await? {
        Ok(row) => row.get(0),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(if n >= COUNT_CAP {
        (COUNT_CAP - 1, true)
    } else {
        (n, false)
    }))
}

/// `query` (not yet polled: its request is sent on its first poll) run on `client` under
/// `statement_timeout = time_box`. The SET, the query and the RESET go out together on the first
/// poll, so the session's own statement_timeout is back even if the request is dropped halfway:
/// no connection returns to the pool with the time box still set. The query's own result is
/// given as it came (a time-out is `QUERY_CANCELED`).
async fn time_boxed<T>(
    client: &Client,
    time_box: std::time::Duration,
    query: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> ApiResult<Result<T, tokio_postgres::Error>> {
    let time_box = format!("SET statement_timeout = {}", time_box.as_millis().max(1));
    let (set, result, reset) = futures_util::join!(
        client.batch_execute(&time_box),
        query,
        client.batch_execute("RESET statement_timeout"),
    );
    set?;
    reset?;
    Ok(result)
}

/// The rows of `sql` (parameters `q`), all of them (`false`) or, when `time_box` ends the
/// statement first, those PostgreSQL sent before (`true`). A page is read in its final order as
/// it is found (an index walked newest first), so the rows sent are the true first rows of the
/// page; a plan that sorts at the end sends none before it is done.
pub async fn rows_within(
    client: &Client,
    sql: &str,
    q: &Query,
    time_box: Option<std::time::Duration>,
) -> ApiResult<(Vec<Row>, bool)> {
    let params = q.params();
    let Some(time_box) = time_box else {
        return Ok((client.query(sql, &params).await?, false));
    };
    let statement = client.prepare(sql).await?;
    let read = async {
        let stream = client.query_raw(&statement, params.iter().copied()).await?;
        futures_util::pin_mut!(stream);
        let mut rows = Vec::new();
        while let Some(row) = stream.next().await {
            match row {
                Ok(row) => rows.push(row),
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) => {
                    return Ok((rows, true))
                }
                Err(e) => return Err(e),
            }
        }
        Ok((rows, false))
    };
    match time_boxed(client, time_box, read).await? {
        Ok(found) => Ok(found),
        // Stopped before the first row was even on its way (planning, or a sort).
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) => Ok((Vec::new(), true)),
        Err(e) => Err(e.into()),
    }
}

/// The `FROM … WHERE …` a list counts and the one its page reads: the same rows, but the page's
/// may be cut short already (the message search sorts and cuts each of its two kinds apart).
#[derive(Debug, Clone, Copy)]
pub struct FromWhere<'a> {
    pub count: &'a str,
    pub page: &'a str,
}

impl<'a> From<&'a str> for FromWhere<'a> {
    fn from(both: &'a str) -> Self {
        FromWhere {
            count: both,
            page: both,
        }
    }
}

impl<'a> From<&'a String> for FromWhere<'a> {
    fn from(both: &'a String) -> Self {
        FromWhere::from(both.as_str())
    }
}

/// The connections a page is read with: its own, and maybe a spare one ([`Reads::spare`]) on
/// which its total is counted at the same time. A count that needs its whole time box then
/// costs the answer nothing past the page: the box runs beside the page instead of after it.
///
/// [`Reads::spare`]: crate::replica::Reads::spare
pub struct Readers<'a> {
    pub page: &'a Client,
    pub count: Option<crate::db::Pooled>,
}

impl<'a> From<&'a Client> for Readers<'a> {
    fn from(page: &'a Client) -> Self {
        Readers { page, count: None }
    }
}

/// The page `window` of `SELECT columns from_where order_by` (`q` holds its parameters), with the
/// capped total.
pub async fn page_of<'a, T>(
    readers: impl Into<Readers<'_>>,
    columns: &str,
    from_where: impl Into<FromWhere<'a>>,
    q: Query,
    window: Window,
    order_by: &str,
    map: impl Fn(&Row) -> T,
) -> ApiResult<Page<T>> {
    read_page(readers, columns, from_where, q, window, order_by, map)
        .await?
        .with_total()
        .await
}

/// A total and whether it is capped, as [`Window::page`] takes it.
type Total = (i64, bool);

/// A page read, its total not known yet: it may still be counted beside it (the caller may use
/// the page's rows meanwhile, [`PageRead::items`]), or be counted after it.
pub struct PageRead<'a, T> {
    client: &'a Client,
    count_from_where: String,
    q: std::sync::Arc<Query>,
    window: Window,
    /// The page's rows (up to `window.limit()`).
    pub items: Vec<T>,
    /// How many rows the page had (the total's floor), whatever became of `items` since.
    seen: usize,
    /// A row follows the page.
    more: bool,
    cut_short: bool,
    counting: Option<tokio::task::JoinHandle<ApiResult<Option<Total>>>>,
}

/// [`page_of`]'s page, without waiting for its total ([`PageRead::with_total`]).
pub async fn read_page<'a, 'c, T>(
    readers: impl Into<Readers<'c>>,
    columns: &str,
    from_where: impl Into<FromWhere<'a>>,
    q: Query,
    window: Window,
    order_by: &str,
    map: impl Fn(&Row) -> T,
) -> ApiResult<PageRead<'c, T>> {
    let Readers {
        page: client,
        count: spare,
    } = readers.into();
    let FromWhere {
        count: count_from_where,
        page: from_where,
    } = from_where.into();
    let q = std::sync::Arc::new(q);
    // With a spare connection the count starts with the page, as a task of its own that keeps
    // the connection until the count ends (within its box), even when the page shows that no
    // count was needed: a connection never goes back to the pool with a statement running.
    let counting = spare.filter(|_| !window.count_time_box.is_zero()).map(|spare| {
        let (q, count_from_where) = (std::sync::Arc::clone(&q), count_from_where.to_owned());
        tokio::spawn(async move { count_capped(&spare, &count_from_where, &q, window.count_time_box).await })
    });
    // The page first, and one row past it: when none follows, the page itself gives the exact
    // total and nothing is counted (a search that finds one message costs one query).
    // LIMIT and OFFSET are the window's checked numbers, written out.
    let sql = format!(
        "SELECT {columns} {from_where} {order_by} LIMIT {} OFFSET {}",
        window.limit() + 1,
        window.offset()
    );
    let (rows, cut_short) = rows_within(client, &sql, &q, window.page_time_box).await?;
    let mut items: Vec<T> = rows.iter().map(map).collect();
    let more = items.len() as i64 > window.limit();
    items.truncate(window.limit() as usize);
    Ok(PageRead {
        client,
        count_from_where: count_from_where.to_owned(),
        q,
        window,
        seen: items.len(),
        items,
        more,
        cut_short,
        counting,
    })
}

impl<T> PageRead<'_, T> {
    /// The page with its total: counted beside it (waited for now, within its box), after it, or
    /// not at all when the page itself tells it.
    pub async fn with_total(self) -> ApiResult<Page<T>> {
        let PageRead {
            client,
            count_from_where,
            q,
            window,
            items,
            seen,
            more,
            cut_short,
            counting,
        } = self;
        if cut_short {
            // What was found is the page; counting would only take longer.
            let mut page = window.page(window.total_seen(seen, true), items);
            page.cut_short = true;
            return Ok(page);
        }
        let total = if !more && (window.offset() == 0 || seen > 0) {
            window.total_seen(seen, false)
        } else if window.count_time_box.is_zero() {
            window.total_seen(seen, more)
        } else {
            let counted = match counting {
                Some(counting) => counting
                    .await
                    .map_err(|e| ApiError::internal(format!("the count stopped: {e}")))??,
                None => count_capped(client, &count_from_where, &q, window.count_time_box).await?,
            };
            counted.unwrap_or_else(|| window.total_seen(seen, more))
        };
        Ok(window.page(total, items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Page `page` of `per_page` of the numbers `g` of `from_where`, in order.
    async fn numbers(client: &Client, from_where: &str, page: Option<i64>, per_page: i64) -> Page<i32> {
        let window = PageParams {
            page,
            per_page: Some(per_page),
        }
        .window()
        .unwrap();
        page_of(client, "g", from_where, Query::default(), window, "ORDER BY g", |r| {
            r.get(0)
        })
        .await
        .unwrap()
    }

    async fn statement_timeout(client: &Client) -> String {
        client.query_one("SHOW statement_timeout", &[]).await.unwrap().get(0)
    }

    /// A count that outlasts its time box gives way to the page, and the session's own
    /// `statement_timeout` is back afterwards (the connection returns to the pool as it came).
    #[tokio::test]
    async fn a_slow_count_gives_way_to_the_page_and_restores_the_session() {
        let url = else_tests::PgCluster::shared().create_database().await;
        // The session's own limit comes with its startup packet, as the web pool's does.
        let url = format!("{url} options='-c statement_timeout=7min'");
        let client = omelse::store::connect(&url).await.unwrap();
        assert_eq!(statement_timeout(&client).await, "7min");
        // Each row costs 0.3 s: counting 8 of them takes 2.4 s, past the time box.
        let slow = "FROM generate_series(1, 8) g WHERE pg_sleep(0.3) IS NOT NULL";
        let page = numbers(&client, slow, Some(1), 3).await;
        assert_eq!(
            (page.items, page.total, page.total_capped),
            (vec![1, 2, 3], 3, true),
            "more than the 3 shown"
        );
        assert_eq!(statement_timeout(&client).await, "7min");
        // The last page, not full, or full with no row after it: the exact total.
        let page = numbers(&client, slow, Some(3), 3).await;
        assert_eq!((page.items, page.total, page.total_capped), (vec![7, 8], 8, false));
        let page = numbers(&client, slow, Some(2), 4).await;
        assert_eq!(
            (page.items, page.total, page.total_capped),
            (vec![5, 6, 7, 8], 8, false)
        );
        assert_eq!(statement_timeout(&client).await, "7min");
        // A quick count is exact.
        let page = numbers(&client, "FROM generate_series(1, 8) g", None, 3).await;
        assert_eq!((page.total, page.total_capped), (8, false));
    }

    /// A page searched for longer than its time box is what was found by then: the true first
    /// rows in the asked order, marked `cut_short`, counted as seen; the session's own
    /// `statement_timeout` is back afterwards.
    #[tokio::test]
    async fn a_slow_page_is_what_was_found_in_time() {
        let url = else_tests::PgCluster::shared().create_database().await;
        let url = format!("{url} options='-c statement_timeout=7min'");
        let client = omelse::store::connect(&url).await.unwrap();
        // An index walked in order: each row is sent as soon as it is found, every 0.5 s.
        client
            .batch_execute(
                "CREATE TABLE t (g int PRIMARY KEY);
                 INSERT INTO t SELECT generate_series(1, 100000);
                 ANALYZE t;",
            )
            .await
            .unwrap();
        let window = PageParams {
            page: None,
            per_page: Some(4),
        }
        .window()
        .unwrap()
        .searching_within(std::time::Duration::from_millis(1200));
        let slow = "FROM t g WHERE pg_sleep(0.5) IS NOT NULL";
        let page = page_of(&client, "g", slow, Query::default(), window, "ORDER BY g", |r| {
            r.get::<_, i32>(0)
        })
        .await
        .unwrap();
        assert!(page.cut_short, "{page:?}");
        assert!(!page.items.is_empty() && page.items.len() < 4, "{:?}", page.items);
        let first: Vec<i32> = (1..=page.items.len() as i32).collect();
        assert_eq!(page.items, first, "the first rows of the page, in order");
        assert_eq!((page.total, page.total_capped), (page.items.len() as i64, true));
        assert_eq!(statement_timeout(&client).await, "7min");
        // In time, the same page is whole and not cut short.
        let quick = page_of(&client, "g", "FROM t g", Query::default(), window, "ORDER BY g", |r| {
            r.get::<_, i32>(0)
        })
        .await
        .unwrap();
        assert_eq!((quick.items, quick.cut_short), (vec![1, 2, 3, 4], false));
    }

    /// A page that holds every row is its own total: nothing is counted (the count's relation
    /// here does not exist, so counting would fail). Past the end, it is counted.
    #[tokio::test]
    async fn a_page_with_every_row_is_not_counted() {
        let url = else_tests::PgCluster::shared().create_database().await;
        let client = omelse::store::connect(&url).await.unwrap();
        let from_where = FromWhere {
            count: "FROM no_such_relation g",
            page: "FROM generate_series(1, 8) g",
        };
        let window = |page| {
            PageParams {
                page: Some(page),
                per_page: Some(5),
            }
            .window()
            .unwrap()
        };
        let page = page_of(
            &client,
            "g",
            from_where,
            Query::default(),
            window(2),
            "ORDER BY g",
            |r| r.get::<_, i32>(0),
        )
        .await
        .unwrap();
        assert_eq!((page.items, page.total, page.total_capped), (vec![6, 7, 8], 8, false));
        let first = page_of(
            &client,
            "g",
            from_where,
            Query::default(),
            window(1),
            "ORDER BY g",
            |r| r.get::<_, i32>(0),
        )
        .await;
        assert!(first.is_err(), "a full page with more rows after it is counted");
    }

    /// With a spare connection from the pool the total is counted there while the page is read
    /// (the count looks at its first row before the page at its last), and is the same exact
    /// total; a pool that would be left without a free connection gives no spare, and the count
    /// follows the page on the page's own connection.
    #[tokio::test]
    async fn the_count_runs_beside_the_page_on_a_spare_connection() {
        let url = else_tests::PgCluster::shared().create_database().await;
        let reads_with = |size| {
            let options = crate::db::PoolOptions::new(size, crate::db::Commit::Durable);
            crate::replica::Reads::primary_only(
                crate::db::pool_with(&crate::db::Target::url(&url), "paging-test", options).unwrap(),
            )
        };
        // Each row looked at leaves the backend that looked and when, and takes 0.1 s.
        reads_with(1)
            .get()
            .await
            .unwrap()
            .batch_execute(
                "CREATE TABLE looked (pid int, at timestamptz DEFAULT clock_timestamp());
                 CREATE FUNCTION look() RETURNS boolean LANGUAGE sql VOLATILE AS
                   $$ INSERT INTO looked (pid) VALUES (pg_backend_pid()); SELECT pg_sleep(0.1) IS NOT NULL $$;",
            )
            .await
            .unwrap();
        let window = PageParams {
            page: None,
            per_page: Some(3),
        }
        .window()
        .unwrap();
        let from_where = "FROM generate_series(1, 8) g WHERE look()";
        for (pool_size, spare_expected) in [(3, true), (2, false)] {
            let reads = reads_with(pool_size);
            let client = reads.get().await.unwrap();
            client.batch_execute("TRUNCATE looked").await.unwrap();
            let readers = Readers {
                page: &client,
                count: reads.spare().await,
            };
            assert_eq!(readers.count.is_some(), spare_expected, "pool of {pool_size}");
            let page = page_of(readers, "g", from_where, Query::default(), window, "ORDER BY g", |r| {
                r.get::<_, i32>(0)
            })
            .await
            .unwrap();
            assert_eq!((page.items, page.total, page.total_capped), (vec![1, 2, 3], 8, false));
            let page_pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
            let looked = client
                .query_one(
                    "SELECT count(DISTINCT pid), count(*),
                            (SELECT min(at) FROM looked WHERE pid <> $1) < (SELECT max(at) FROM looked WHERE pid = $1)
                     FROM looked",
                    &[&page_pid],
                )
                .await
                .unwrap();
            let (backends, rows, counted_beside): (i64, i64, Option<bool>) =
                (looked.get(0), looked.get(1), looked.get(2));
            assert_eq!(rows, 16, "the page and the count each looked at the 8 rows");
            if spare_expected {
                assert_eq!((backends, counted_beside), (2, Some(true)));
            } else {
                assert_eq!((backends, counted_beside), (1, None));
            }
        }
    }

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
