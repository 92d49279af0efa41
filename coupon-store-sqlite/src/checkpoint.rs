//! Checkpoints of the write-ahead log on a thread of the store's own.
//!
//! A WAL commit appends the pages it changed to the log; a checkpoint copies them back into the
//! database file and `fsync`s it. Left to SQLite, the commit that takes the log past a size
//! runs the checkpoint itself, so one operation in thousands waits for it, and on a stream of
//! small writes that share is about a third of their time. The store runs a passive checkpoint
//! every [`INTERVAL`] on a connection of its own instead, beside the writers (it never blocks
//! them, nor they it), and the connections keep SQLite's own checkpoint only as a backstop for
//! a log that outgrows 20,000 pages ([`CONNECTION_PRAGMAS`](crate::CONNECTION_PRAGMAS)): a
//! checkpointer that cannot keep up, or another process writing without one.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// How often the log is checkpointed.
const INTERVAL: Duration = Duration::from_millis(50);

/// The checkpointing thread; stopped (and waited for) when dropped.
pub(crate) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing, every [`INTERVAL`], the database `conn` is open on.
    pub(crate) fn start(conn: Connection) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("coupon-sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    // A failed checkpoint (the database busy with another process's
                    // checkpoint, say) is tried again at the next tick; meanwhile the log
                    // only grows, up to the writers' backstop.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The thread only runs checkpoints: nothing it could panic with is ours to report.
            let _ = thread.join();
        }
    }
}
