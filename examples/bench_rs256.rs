//! The signing bound for `make bench` (O1): how many ID tokens per second
//! this machine can sign at all, the way the token endpoint signs one
//! (`auth::jwt::sign`, RS256 with a 2048-bit key, claims of
//! the same shape), on as many plain OS threads as there are cores. Each
//! code exchange signs one ID token, so this bounds the token endpoint.
//!
//! `bench_rs256 [SECONDS=5] [THREADS=available_parallelism]`
//!
//! Prints one JSON line: the sum of the threads' rates.

use gatehouse::auth::jwt::{generate_key, sign};
use gatehouse::clock::Timestamp;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: f64 = args.first().map_or(5.0, |a| a.parse().expect("SECONDS"));
    let threads: usize = args.get(1).map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |a| a.parse().expect("THREADS"),
    );
    let now = Timestamp::from_millis(1_767_225_600_000);
    let key = generate_key(now, now).expect("an RSA key");
    let claims = serde_json::json!({
        "iss": "https://login.example.com", "sub": "500", "aud": "bench-client-id-000000",
        "exp": 1_767_229_200, "iat": 1_767_225_600, "auth_time": 1_767_225_600,
        "nonce": "n-0S6_WzA2Mj", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
        "name": "user500", "preferred_username": "user500",
        "email": "user500@bench.example", "email_verified": false, "groups": ["staff"],
    });
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (key, claims) = (key.clone(), claims.clone());
            std::thread::spawn(move || {
                let (mut done, mut last) = (0u64, started);
                while Instant::now() < deadline {
                    sign(&key, &claims).expect("signed");
                    done += 1;
                    last = Instant::now();
                }
                (done, last.duration_since(started).as_secs_f64())
            })
        })
        .collect();
    let (mut total, mut rate) = (0, 0.0);
    for h in handles {
        let (done, secs) = h.join().expect("a signing thread panicked");
        total += done;
        if secs > 0.0 {
            rate += done as f64 / secs;
        }
    }
    println!(
        "{{\"threads\": {threads}, \"signatures\": {total}, \"per_second\": {rate:.1}, \"ms_per_signature_per_thread\": {:.3}}}",
        if rate > 0.0 {
            1000.0 * threads as f64 / rate
        } else {
            0.0
        }
    );
}
