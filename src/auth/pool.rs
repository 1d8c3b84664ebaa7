//! The hashing pool: a few OS threads that run bcrypt, fed by a bounded
//! queue.
//!
//! bcrypt at cost 12 takes ~300 ms of one core. Run on the async runtime it
//! would stall every other request; run on `spawn_blocking` it would queue
//! without bound (512 threads) and let a login flood starve the machine.
//! So: `workers` threads (one per core by default), a queue of `queue`
//! jobs, and `Busy` beyond it, which the HTTP layer answers with 503 and
//! Retry-After (SPEC §4).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The queue is full: try again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the password hashing queue is full")]
pub struct Busy;

#[derive(Clone)]
pub struct HashPool {
    sender: SyncSender<Job>,
    queued: Arc<AtomicUsize>,
}

impl HashPool {
    /// Starts `workers` threads sharing a queue of `queue` waiting jobs.
    pub fn new(workers: usize, queue: usize) -> std::io::Result<Self> {
        let (sender, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let queued = Arc::new(AtomicUsize::new(0));
        for n in 0..workers.max(1) {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("gatehouse-hash-{n}"))
                .spawn(move || worker(&receiver))?;
        }
        Ok(Self { sender, queued })
    }

    /// Runs `f` on a pool thread and waits (asynchronously) for its result.
    pub async fn run<T, F>(&self, f: F) -> Result<T, Busy>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let queued = Arc::clone(&self.queued);
        let job: Job = Box::new(move || {
            // Counted down before the answer goes out (and on a panic), so
            // that whoever has the answer sees the queue without this job.
            let done = CountDown(queued);
            let value = f();
            drop(done);
            let _ = tx.send(value);
        });
        // Count before sending: a worker may take the job (and decrement)
        // before try_send returns.
        self.queued.fetch_add(1, Ordering::SeqCst);
        match self.sender.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                return Err(Busy);
            }
        }
        // The worker always answers unless the job panicked; treat that as
        // busy rather than hanging the request.
        rx.await.map_err(|_| Busy)
    }

    /// Jobs waiting or running: the queue depth for metrics.
    pub fn depth(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }
}

/// Counts one job out of the queue depth when dropped.
struct CountDown(Arc<AtomicUsize>);

impl Drop for CountDown {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn worker(receiver: &Mutex<Receiver<Job>>) {
    loop {
        // Hold the lock only while taking a job, never while running one.
        let job = {
            let rx = receiver.lock().unwrap_or_else(|p| p.into_inner());
            rx.recv()
        };
        match job {
            // A panicking job must not take the thread with it (its caller
            // gets Busy through the dropped answer channel).
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            // Every sender is gone: the pool was dropped.
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[tokio::test]
    async fn jobs_run_off_the_runtime_and_return_their_result() {
        let pool = HashPool::new(1, 4).unwrap();
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("gatehouse-hash-0"));
    }

    // Multi-threaded: the test thread blocks on std channels while the
    // runtime's other thread drives the spawned tasks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_answers_busy_at_once() {
        let pool = HashPool::new(1, 1).unwrap();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        // Occupy the only worker until released.
        let running = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                })
                .await
            }
        });
        started_rx.recv().unwrap();
        // Fill the one queue slot, here and now: a job sent by another
        // task could still be on its way when the check below runs, and
        // take the slot after it (then the check's job would wait for the
        // worker this test holds).
        let (ran_tx, ran_rx) = mpsc::channel::<u8>();
        pool.sender
            .try_send(Box::new(move || {
                let _ = ran_tx.send(7);
            }))
            .unwrap();
        assert_eq!(pool.run(|| 1).await, Err(Busy));
        release_tx.send(()).unwrap();
        running.await.unwrap().unwrap();
        assert_eq!(ran_rx.recv().unwrap(), 7, "the queued job runs after");
        assert_eq!(pool.depth(), 0);
    }
}
