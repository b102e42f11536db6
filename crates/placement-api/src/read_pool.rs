//! The threads that build allocation-candidates answers, apart from the async runtime and at
//! the lowest CPU priority, so that a flood of searches never starves writes.
//!
//! A search holds only a snapshot of the state (no lock the apply path needs), but it needs
//! CPU, and on a small machine CPU is what writes wait for: with searches on the runtime's
//! worker threads (or on tokio's blocking pool, one thread per concurrent search), a few
//! dozen concurrent searches took most of the cores and write latency grew with them. Here a
//! fixed set of [`threads`] threads runs them under Linux's `SCHED_IDLE` policy: a search
//! runs whenever a core would otherwise be idle, so alone it uses every core, but a runtime
//! thread (HTTP, Raft, apply, the log's fsyncs) that wakes up takes the core from it at once.
//! Searches queue for a free thread in arrival order.
//!
//! Why not only a raised nice value (what these threads had before): a nice value sets a
//! *share* of the CPU, so each of a write's wake-ups (HTTP worker, Raft core, log fsync,
//! replication, apply) could still wait out a search's time slice; `SCHED_IDLE` makes the
//! kernel preempt the search on every such wake-up. Measured on 2 cores
//! (`scripts/bench-interference`, docs/benchmarks.md section 3), it lowered the write p99
//! under a candidates load. The price: when writes keep every core busy, searches get almost
//! no CPU (weight 3 against a normal thread's 1024, where nice +10 gave 110) and wait; a
//! node whose writes alone saturate it is overloaded either way.
//!
//! If the policy cannot be set (a kernel or sandbox that refuses it), the nice value is
//! raised by [`NICE`] instead; if that is refused too, the threads run at normal priority
//! and still bound the number of concurrent searches. Either fallback is logged once.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

/// The nice-value increment used when `SCHED_IDLE` is refused (10 gives about a tenth of the
/// CPU share of a normal thread under contention).
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

/// Puts this thread under `SCHED_IDLE`, else raises its nice value by [`NICE`] (Linux:
/// both act on the calling thread only). A refusal is logged once.
fn lower_priority() {
    use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy};
    let Err(refused) = thread_priority::set_thread_priority_and_policy(
        thread_priority::thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    ) else {
        return;
    };
    let tid = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
    let niced = rustix::process::setpriority_process(Some(tid), current + NICE);
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| match niced {
        Ok(()) => tracing::warn!(
            ?refused,
            nice = NICE,
            "SCHED_IDLE refused: search threads run at a raised nice value"
        ),
        Err(e) => tracing::warn!(
            ?refused,
            error = %e,
            "SCHED_IDLE and setpriority refused: search threads run at normal priority"
        ),
    });
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

    /// Linux lets any thread lower its own policy to `SCHED_IDLE` (no privilege needed), so
    /// a search must run under it here.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn searches_run_under_sched_idle() {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
        let policy = super::run(thread_priority::unix::thread_schedule_policy).await;
        assert_eq!(
            policy.map(|p| p.ok()),
            Some(Some(ThreadSchedulePolicy::Normal(
                NormalThreadSchedulePolicy::Idle
            )))
        );
    }
}
