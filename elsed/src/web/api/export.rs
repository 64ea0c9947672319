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

/// A cell a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or carriage
/// return) gets a leading `'`: a sender address is not a program. Only a cell that is a number as a
/// whole (`-12`, `-0.5`) is exempt: `-1+HYPERLINK(…)` starts with a digit too. The browser's
/// exports apply the same rule (web/src/csv.ts), both tested on web/tests/csv-guard-vectors.json.
fn guard(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = matches!(cell.as_bytes().first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'));
    if risky && !is_plain_number(cell) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// `-`, digits, optionally `.` and digits: what a spreadsheet reads as a negative number and
/// nothing else.
fn is_plain_number(cell: &str) -> bool {
    let unsigned = cell.strip_prefix('-').unwrap_or(cell);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction)
}

#[cfg(test)]
mod tests {
    use super::guard;

    /// The vectors the browser's guard is tested on too.
    #[test]
    fn formulas_are_defused_numbers_are_not() {
        let file: serde_json::Value =
            serde_json::from_str(include_str!("../../../../web/tests/csv-guard-vectors.json")).unwrap();
        let vectors = file["vectors"].as_array().unwrap();
        assert!(vectors.len() > 10);
        for pair in vectors {
            let (cell, expected) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
            assert_eq!(guard(cell), expected, "cell {cell:?}");
        }
    }
}
