//! `format=csv` of the list endpoints: the rows of one query (every column selected as text, in
//! the order of the header), streamed to the client as they come from PostgreSQL, at most
//! [`MAX_ROWS`]: an export of 100 000 rows never sits whole in memory. Written with the `csv` crate
//! (quoting), plus the usual guard against spreadsheet formulas in cells.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio_postgres::types::ToSql;

use crate::sql::Query;
use crate::web::account_limit::{AccountLimit, Place};
use crate::web::error::{ApiError, ApiResult};
use crate::web::paging::MAX_ROWS;

/// The pool's connection type: kept by the export until the last row is sent.
pub type Connection = crate::db::Pooled;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;

/// The running exports of every account: an export holds a database connection for as long as
/// its client reads, so one account may run only a few at once (`[web] exports_per_user`), and
/// a client that stops reading loses its export after `[web] export_idle_secs`.
#[derive(Debug)]
pub struct Exports {
    running: AccountLimit,
    idle: Duration,
}

impl Exports {
    pub fn new(per_user: u32, idle: Duration) -> Arc<Exports> {
        Arc::new(Exports {
            running: AccountLimit::new(per_user, Duration::ZERO, "CSV exports", 5),
            idle,
        })
    }

    /// A slot for one more export of `user_id`, or 429 when the account runs its limit already.
    pub async fn claim(&self, user_id: i64) -> ApiResult<ExportSlot> {
        Ok(ExportSlot {
            _place: self.running.claim(user_id).await?,
            idle: self.idle,
        })
    }
}

/// One running export, counted until it is dropped.
#[derive(Debug)]
pub struct ExportSlot {
    _place: Place,
    idle: Duration,
}

/// Runs `select` (its columns as text, matching `header`; no LIMIT) and answers a CSV attachment
/// named `filename`. The rows are read by a task of their own that hands the body one chunk at
/// a time: when the client has not taken a chunk for the idle time, the task gives up, the
/// connection leaves the pool (a half-read result is no connection to hand on) and the body
/// ends with an error, so the client sees a cut download, not a short file.
pub async fn csv_response(
    client: Connection,
    slot: ExportSlot,
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
    let idle = slot.idle;
    let mut state = State {
        client: Some(client),
        rows: Box::pin(rows),
        writer,
        columns: header.len(),
        done: false,
    };
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(1);
    let abandoned = Arc::new(AtomicBool::new(false));
    let gave_up = abandoned.clone();
    tokio::spawn(async move {
        let _slot = slot;
        while let Some(chunk) = state.next_chunk().await {
            match tokio::time::timeout(idle, sender.send(chunk)).await {
                Ok(Ok(())) => {}
                // The client went away: the body was dropped.
                Ok(Err(_)) => break,
                Err(_) => {
                    tracing::warn!(
                        idle_secs = idle.as_secs(),
                        "CSV export abandoned: the client stopped reading"
                    );
                    gave_up.store(true, Ordering::Release);
                    break;
                }
            }
        }
        // A connection still in the middle of a result is closed, not handed to the next
        // request (which would wait behind the rest of the rows).
        if !state.done {
            if let Some(client) = state.client.take() {
                drop(deadpool_postgres::Object::take(client));
            }
        }
    });
    let body = futures_util::stream::unfold(Some(receiver), move |receiver| {
        let abandoned = abandoned.clone();
        async move {
            let mut receiver = receiver?;
            match receiver.recv().await {
                Some(chunk) => Some((Ok(chunk), Some(receiver))),
                None if abandoned.load(Ordering::Acquire) => Some((
                    Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "export abandoned")),
                    None,
                )),
                None => None,
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(body.boxed()),
    )
        .into_response())
}

struct State {
    client: Option<Connection>,
    rows: std::pin::Pin<Box<tokio_postgres::RowStream>>,
    writer: csv::Writer<Vec<u8>>,
    columns: usize,
    done: bool,
}

impl State {
    /// The next about [`CHUNK`] bytes of CSV text. An error after the first bytes cannot change
    /// the status any more: it is logged and the export ends there.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        loop {
            match self.rows.next().await {
                Some(Ok(row)) => {
                    let cells: Vec<_> = (0..self.columns)
                        .map(|i| guard(row.get::<_, Option<&str>>(i).unwrap_or("")))
                        .collect();
                    if let Err(e) = self.writer.write_record(cells.iter().map(|c| c.as_bytes())) {
                        tracing::error!(error = %e, "CSV export failed");
                        self.done = true;
                    }
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "CSV export failed");
                    self.done = true;
                }
                None => self.done = true,
            }
            if self.done || self.writer.get_ref().len() >= CHUNK {
                let full = std::mem::replace(&mut self.writer, csv::Writer::from_writer(Vec::with_capacity(CHUNK)));
                return Some(Bytes::from(full.into_inner().unwrap_or_default()));
            }
        }
    }
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
