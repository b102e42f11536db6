//! The threads that build allocation-candidates answers, apart from the async runtime and at
//! a lower CPU priority, so that a flood of searches never starves writes.
//!
//! A search holds only a snapshot of the state (no lock the apply path needs), but it needs
//! CPU, and on a small machine CPU is what writes wait for: with searches on the runtime's
//! worker threads (or on tokio's blocking pool, one thread per concurrent search), a few
//! dozen concurrent searches took most of the cores and write latency grew with them. Here a
//! fixed set of [`threads`] threads runs them, each with its nice value raised by
//! [`NICE`]: when writes and searches compete, the kernel gives the runtime's threads (HTTP,
//! Raft, apply, the log's fsyncs) about ten times the share of a search thread; when nothing
//! competes, searches use every core. Searches queue for a free thread in arrival order.
//!
//! If the priority cannot be lowered (a kernel or sandbox that refuses `setpriority`), the
//! threads run at normal priority and still bound the number of concurrent searches; this is
//! logged once.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

/// How much lower a search thread's priority is than the runtime's (a nice-value increment:
/// 10 gives about a tenth of the CPU share of a normal thread under contention).
pub const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Pool {
    jobs: mpsc::Sender<Job>,
}

/// Search threads: one per core (searches use all cores when nothing else runs).
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads() {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("placementd-search-{i}"))
                .spawn(move || worker(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "a search thread could not be started");
            }
        }
        Pool { jobs: tx }
    })
}

fn worker(rx: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    loop {
        let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        // A panicking search fails its request (its answer channel is dropped), not the
        // thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// Raises this thread's nice value by [`NICE`] (Linux: `setpriority` on a thread id sets
/// that thread's priority only).
fn lower_priority() {
    let tid = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(Some(tid), current + NICE) {
        static ONCE: OnceLock<()> = OnceLock::new();
        ONCE.get_or_init(|| {
            tracing::warn!(error = %e, "search threads run at normal priority");
        });
    }
}

/// Runs `f` on a search thread and waits for its result. `None` if the thread panicked
/// (the panic is reported by the panic hook) or the pool could not run it.
pub async fn run<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    if pool().jobs.send(job).is_err() {
        return None;
    }
    rx.await.ok()
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn runs_jobs_and_survives_a_panicking_one() {
        assert_eq!(super::run(|| 6 * 7).await, Some(42));
        assert_eq!(super::run(|| -> u8 { panic!("a bug") }).await, None);
        let answers = futures::future::join_all((0..32).map(|i| super::run(move || i * 2))).await;
        assert_eq!(answers, (0..32).map(|i| Some(i * 2)).collect::<Vec<_>>());
    }
}
