//! Graceful stop of the long-running subcommands (`greylist`, `ndr`, `maintain --every`): SIGTERM
//! (what `systemctl stop` sends) or SIGINT stops the listeners and ends elsed with exit status 0,
//! so that systemd records a clean stop rather than a failure. Connections still open are
//! dropped; nothing is lost by that: an NDR is acknowledged only after its commit (Postfix sends
//! it again) and an unanswered policy request gets smtpd's default action.

use std::future::Future;
use std::process::ExitCode;

use tokio::signal::unix::{signal, SignalKind};

/// Runs `work` until it ends or a stop signal comes, whichever is first.
pub async fn or_signal(what: &str, work: impl Future<Output = anyhow::Result<ExitCode>>) -> anyhow::Result<ExitCode> {
    let name = tokio::select! {
        result = work => return result,
        name = stop_requested() => name?,
    };
    tracing::info!("{what}: {name} received, stopping");
    Ok(ExitCode::SUCCESS)
}

/// Waits for SIGTERM or SIGINT; says which came. Also what `elsed serve` waits for before its
/// graceful shutdown.
pub async fn stop_requested() -> std::io::Result<&'static str> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    })
}
