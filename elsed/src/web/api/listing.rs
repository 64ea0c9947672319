//! The one path of the list endpoints (`/messages`, `/rejects`, `/logs`): read the request (the
//! endpoint's filters, then `format`, `page`, `per_page`, `sort`; unknown parameters refused),
//! record the search in the caller's history when it shows its first page, then answer a page
//! as JSON or every matching row as CSV. An endpoint says only what is its own: a [`Listing`].

use std::future::Future;

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tokio_postgres::Client;

use super::export;
use super::history::{self, Kind};
use super::params::{Paging, Params};
use crate::access::{Caller, Scope};
use crate::sql::Query;
use crate::web::error::ApiResult;
use crate::web::paging::{Page, Readers};
use crate::web::AppState;

/// What one list endpoint finds, and how it lists and exports it.
pub trait Listing {
    /// What the request asks for.
    type Filter: Send + Sync;
    /// One row of a page.
    type Item: Serialize + Send;
    /// Sort fields and the SQL they order by, and the sort when none is asked for.
    const SORTS: &'static [(&'static str, &'static str)];
    const DEFAULT_SORT: &'static str;
    /// The column that breaks ties of the sort: pages never overlap.
    const TIE: &'static str;
    /// The export's columns and file name.
    const CSV_HEADER: &'static [&'static str];
    const CSV_FILE: &'static str;

    /// Reads the endpoint's filters (400 naming a bad one).
    fn read_filter(p: &mut Params) -> ApiResult<Self::Filter>;

    /// The kind of search, as the history tells it.
    fn kind(filter: &Self::Filter) -> Kind;

    /// A page of what `filter` finds within `scope`, read with `readers` (its total maybe counted
    /// on a spare connection beside it).
    fn page(
        readers: Readers<'_>,
        scope: &Scope,
        filter: &Self::Filter,
        paging: &Paging,
    ) -> impl Future<Output = ApiResult<Page<Self::Item>>> + Send;

    /// The export's query: text columns in the order of [`Listing::CSV_HEADER`], ordered by
    /// `order_by`, without a LIMIT.
    fn csv_select(scope: &Scope, filter: &Self::Filter, order_by: &str) -> ApiResult<(String, Query)>;
}

/// A list request read whole: the filter, CSV or not, the page; unknown parameters refused.
pub struct ListRequest<F> {
    pub filter: F,
    pub csv: bool,
    pub paging: Paging,
    pub params: Params,
}

impl<F> ListRequest<F> {
    /// Reads `pairs` with `read` (the endpoint's filters), then `format`, `page`, `per_page`, `sort`.
    pub fn read(
        pairs: Vec<(String, String)>,
        read: impl FnOnce(&mut Params) -> ApiResult<F>,
        sorts: &[(&str, &str)],
        default_sort: &str,
    ) -> ApiResult<Self> {
        let mut params = Params::new(pairs);
        let filter = read(&mut params)?;
        let csv = params.wants_csv()?;
        let paging = params.paging(sorts, default_sort)?;
        params.finish()?;
        Ok(ListRequest {
            filter,
            csv,
            paging,
            params,
        })
    }

    /// Adds the search to the caller's history when it shows its first page (paging through
    /// results is not a new search) and has some term (the newest messages that the search page
    /// shows before any filter are no search).
    pub async fn record(&self, client: &Client, caller: &Caller, kind: Kind) {
        let terms = self.params.search_terms();
        if self.params.is_first_page() && terms.as_object().is_some_and(|t| !t.is_empty()) {
            history::record_quietly(client, caller, kind, &terms).await;
        }
    }
}

/// Answers a request of list `L`: a page as JSON, or with `format=csv` every row as CSV.
pub async fn answer<L: Listing>(
    state: &AppState,
    caller: &Caller,
    pairs: Vec<(String, String)>,
) -> ApiResult<Response> {
    let mut request = ListRequest::read(pairs, L::read_filter, L::SORTS, L::DEFAULT_SORT)?;
    let time_limit = std::time::Duration::from_millis(state.config.web.search_time_limit_ms);
    request.paging.window = request.paging.window.searching_within(time_limit);
    // A place among the account's exports or queries is claimed before anything else: past its
    // limit, 429 and nothing recorded. The history is written on the primary; the rows are read
    // where reads go (a standby).
    let record_history = async {
        request
            .record(&*state.db.get().await?, caller, L::kind(&request.filter))
            .await;
        ApiResult::Ok(())
    };
    if request.csv {
        let slot = state.exports.claim(caller.user_id).await?;
        record_history.await?;
        let client = state.reads.get().await?;
        return csv::<L>(client, slot, &caller.scope, &request.filter, &request.paging).await;
    }
    let client = state.read_for(caller).await?;
    let readers = Readers {
        page: &client,
        count: state.reads.spare().await,
    };
    let page = L::page(readers, &caller.scope, &request.filter, &request.paging).await?;
    drop(client);
    record_history.await?;
    Ok(Json(page).into_response())
}

/// What `filter` finds within `scope` as a CSV attachment, in the order of `paging`.
pub async fn csv<L: Listing>(
    client: export::Connection,
    slot: export::ExportSlot,
    scope: &Scope,
    filter: &L::Filter,
    paging: &Paging,
) -> ApiResult<Response> {
    let (select, q) = L::csv_select(scope, filter, &paging.order_by(L::TIE))?;
    export::csv_response(client, slot, &select, &q, L::CSV_HEADER, L::CSV_FILE).await
}
