//! Maintenance statements (`VACUUM`, `ANALYZE`) at autovacuum's pace, so that `elsed maintain`
//! leaves the disk and the cores to searches and writers as autovacuum does.

use tokio_postgres::Client;

use super::Result;

/// Runs `statements` in turn with `vacuum_cost_delay` at autovacuum's 2 ms, while
/// `go_on(statements run so far)` says yes (it is asked before each); returns how many ran.
pub(crate) async fn run_like_autovacuum(
    client: &Client,
    statements: impl IntoIterator<Item = String>,
    mut go_on: impl FnMut(usize) -> bool,
) -> Result<usize> {
    let mut ran = 0;
    for statement in statements {
        if !go_on(ran) {
            break;
        }
        if ran == 0 {
            client.batch_execute("SET vacuum_cost_delay = '2ms'").await?;
        }
        client.batch_execute(&statement).await?;
        ran += 1;
    }
    if ran > 0 {
        client.batch_execute("RESET vacuum_cost_delay").await?;
    }
    Ok(ran)
}
