//! `format=csv` of the list endpoints: the rows of one query (every column selected as text, in
//! the order of the header), streamed to the client as they come from PostgreSQL, at most
//! [`MAX_ROWS`]: an export of 100 000 rows never sits whole in memory. Written with the `csv` crate
//! (quoting), plus the usual guard against spreadsheet formulas in cells.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use tokio_postgres::types::ToSql;

use crate::sql::Query;
use crate::web::error::{ApiError, ApiResult};
use crate::web::paging::MAX_ROWS;

/// The pool's connection type: kept by the stream until the last row is sent.
pub type Connection = crate::db::Pooled;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;

/// Runs `select` (its columns as text, matching `header`; no LIMIT) and answers a CSV attachment
/// named `filename`.
pub async fn csv_response(
    client: Connection,
    select: &str,
    query: &Query,
    header: &'static [&'static str],
    filename: &'static str,
) -> ApiResult<Response> {
    let sql = format!("{select} LIMIT {MAX_ROWS}");
    let params: Vec<&(dyn ToSql + Sync)> = query.params();
    let rows = client.query_raw(&sql, params).await?;
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(CHUNK));
    writer.write_record(header).map_err(ApiError::internal)?;
    let state = State {
        _client: client,
        rows: Box::pin(rows),
        writer,
        columns: header.len(),
        done: false,
    };
    let body = Body::from_stream(chunks(state));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response())
}

struct State {
    _client: Connection,
    rows: std::pin::Pin<Box<tokio_postgres::RowStream>>,
    writer: csv::Writer<Vec<u8>>,
    columns: usize,
    done: bool,
}

/// The CSV text in chunks of about [`CHUNK`] bytes. An error after the first bytes cannot change
/// the status any more: it is logged and the export ends there.
fn chunks(state: State) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        loop {
            match state.rows.next().await {
                Some(Ok(row)) => {
                    let cells: Vec<_> = (0..state.columns)
                        .map(|i| guard(row.get::<_, Option<&str>>(i).unwrap_or("")))
                        .collect();
                    if let Err(e) = state.writer.write_record(cells.iter().map(|c| c.as_bytes())) {
                        tracing::error!(error = %e, "CSV export failed");
                        state.done = true;
                    }
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "CSV export failed");
                    state.done = true;
                }
                None => state.done = true,
            }
            if state.done || state.writer.get_ref().len() >= CHUNK {
                let full = std::mem::replace(&mut state.writer, csv::Writer::from_writer(Vec::with_capacity(CHUNK)));
                let bytes = full.into_inner().unwrap_or_default();
                return Some((Ok(Bytes::from(bytes)), state));
            }
        }
    })
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `@`, `-` not followed by a digit, tab,
/// carriage return at the start) gets a leading `'`: a sender address is not a program.
fn guard(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = match cell.as_bytes() {
        [b'=' | b'+' | b'@' | b'\t' | b'\r', ..] => true,
        [b'-', rest @ ..] => !rest.first().is_some_and(u8::is_ascii_digit),
        _ => false,
    };
    if risky {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

#[cfg(test)]
mod tests {
    use super::guard;

    #[test]
    fn formulas_are_defused_numbers_are_not() {
        assert_eq!(guard("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(guard("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(guard("-x"), "'-x");
        assert_eq!(guard("-7792685374438105956"), "-7792685374438105956");
        assert_eq!(guard("bob@example.com"), "bob@example.com");
        assert_eq!(guard(""), "");
    }
}
