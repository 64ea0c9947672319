//! The write of a batch rsyslog was answered for, running on the runtime's worker thread while
//! the commit thread parses and correlates the next one.

use std::time::Instant;

use crossbeam_channel::{bounded, Receiver};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use super::spool::Mark;
use crate::store::{self, Batch, WriteStats};

/// What a finished write gives back: the connection and writer it borrowed and how it went (after
/// a failure its rows are made again from the spool file).
pub(super) struct Written {
    pub client: Client,
    pub writer: store::Writer,
    pub result: store::Result<WriteStats>,
    /// The spool's lines this write covers: those before the mark.
    pub spooled: Mark,
    pub started: Instant,
}

pub(super) struct InFlight {
    task: JoinHandle<Written>,
    done: Receiver<()>,
}

impl InFlight {
    pub fn start(runtime: &Handle, mut client: Client, mut writer: store::Writer, batch: Batch, spooled: Mark) -> Self {
        let (signal, done) = bounded::<()>(0);
        let task = runtime.spawn(async move {
            let started = Instant::now();
            let result = writer.write_batch(&mut client, &batch).await;
            // Its end is seen by the receiver (disconnected) until the write is settled.
            drop(signal);
            Written {
                client,
                writer,
                result,
                spooled,
                started,
            }
        });
        InFlight { task, done }
    }

    /// Whether the write has ended.
    pub fn is_done(&self) -> bool {
        matches!(self.done.try_recv(), Err(crossbeam_channel::TryRecvError::Disconnected))
    }

    /// Ready (disconnected) once the write has ended.
    pub fn done(&self) -> &Receiver<()> {
        &self.done
    }

    pub async fn finish(self) -> Result<Written, String> {
        self.task.await.map_err(|e| format!("the write task stopped: {e}"))
    }
}
