//! The bcrypt bound for `make bench` (P2): how many password checks per
//! second this machine can do at all, measured the way the server checks
//! one (`auth::password::verify_now`: HMAC pre-hash, then bcrypt verify of
//! our scheme), on as many plain OS threads as there are cores.
//!
//! `bench_bcrypt [COST=12] [SECONDS=8] [THREADS=available_parallelism]`
//!
//! Each thread verifies in a loop until the time is up; its rate is the
//! verifies it finished divided by the time of its last finish (so a
//! half-done verify at the deadline does not count as time). The bound is
//! the sum of the threads' rates. Prints one JSON line.

use gatehouse::auth::password::{hash_now, verify_now};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cost: u32 = args.first().map_or(12, |a| a.parse().expect("COST"));
    let seconds: f64 = args.get(1).map_or(8.0, |a| a.parse().expect("SECONDS"));
    let threads: usize = args.get(2).map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |a| a.parse().expect("THREADS"),
    );
    let key = [7u8; 32];
    let password = "bench-Password-1!";
    let stored = hash_now(&key, cost, password);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let stored = stored.clone();
            std::thread::spawn(move || {
                let mut done = 0u64;
                let mut last = started;
                while Instant::now() < deadline {
                    assert!(verify_now(&key, password, &stored));
                    done += 1;
                    last = Instant::now();
                }
                (done, last.duration_since(started).as_secs_f64())
            })
        })
        .collect();
    let mut total = 0;
    let mut rate = 0.0;
    for h in handles {
        let (done, secs) = h.join().expect("a verify thread panicked");
        total += done;
        if secs > 0.0 {
            rate += done as f64 / secs;
        }
    }
    println!(
        "{{\"cost\": {cost}, \"threads\": {threads}, \"verifies\": {total}, \"per_second\": {rate:.3}, \"ms_per_verify_per_thread\": {:.1}}}",
        if rate > 0.0 {
            1000.0 * threads as f64 / rate
        } else {
            0.0
        }
    );
}
