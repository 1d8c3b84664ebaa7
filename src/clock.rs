//! Time as an input: the clock every time-dependent rule reads.
//!
//! Lockout, session expiry and rate limits never call `SystemTime::now()`
//! themselves; they take the `Clock` held in `AppState`, so tests move time
//! with `Clock::advance` instead of sleeping (STYLE "Time and randomness are
//! inputs").

use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time as whole milliseconds since the Unix epoch: the form in
/// which times are stored, compared and sent as JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => Self(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }

    /// The last second RFC 3339 can write: 9999-12-31T23:59:59Z. Times
    /// after it are refused where they come in (lock and invitation
    /// durations), and shown as "after" it, never formatted.
    pub const LAST: Timestamp = Timestamp(253_402_300_799_000);

    pub fn to_system_time(self) -> SystemTime {
        let d = Duration::from_millis(self.0.unsigned_abs());
        let t = if self.0 >= 0 {
            UNIX_EPOCH.checked_add(d)
        } else {
            UNIX_EPOCH.checked_sub(d)
        };
        t.unwrap_or(UNIX_EPOCH)
    }

    pub fn plus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    pub fn minus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// How long from `self` until `later`; zero when `later` is not later.
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, to the second: `2026-11-28T14:35:00Z`.
    /// Times outside what RFC 3339 can write (before 1970 or after 9999)
    /// are said in words: formatting must never abort the process.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            return f.write_str("before 1970-01-01T00:00:00Z");
        }
        if *self > Self::LAST {
            return f.write_str("after 9999-12-31T23:59:59Z");
        }
        write!(
            f,
            "{}",
            humantime::format_rfc3339_seconds(self.to_system_time())
        )
    }
}

/// The source of "now". `System` in production; `Manual` in tests, where it
/// only moves when told to.
#[derive(Clone, Debug)]
pub struct Clock(ClockKind);

#[derive(Clone, Debug)]
enum ClockKind {
    System,
    Manual(Arc<Manual>),
}

/// A manual clock's time, and the sleeps waiting for it to move.
#[derive(Debug)]
struct Manual {
    now: Mutex<SystemTime>,
    sleepers: Mutex<Vec<Waker>>,
}

impl Manual {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock {
    pub fn system() -> Self {
        Self(ClockKind::System)
    }

    /// A clock that starts at `start` and moves only with `advance`.
    pub fn manual(start: SystemTime) -> Self {
        Self(ClockKind::Manual(Arc::new(Manual {
            now: Mutex::new(start),
            sleepers: Mutex::new(Vec::new()),
        })))
    }

    pub fn now_system(&self) -> SystemTime {
        match &self.0 {
            ClockKind::System => SystemTime::now(),
            ClockKind::Manual(m) => m.now(),
        }
    }

    pub fn now(&self) -> Timestamp {
        Timestamp::from_system_time(self.now_system())
    }

    /// Moves a manual clock forward. A system clock cannot be moved: calling
    /// this on one is a programming error in a test, reported by a panic.
    pub fn advance(&self, by: Duration) {
        match &self.0 {
            ClockKind::System => panic!("Clock::advance called on the system clock"),
            ClockKind::Manual(m) => {
                *m.now.lock().unwrap_or_else(|p| p.into_inner()) += by;
                let sleepers =
                    std::mem::take(&mut *m.sleepers.lock().unwrap_or_else(|p| p.into_inner()));
                for waker in sleepers {
                    waker.wake();
                }
            }
        }
    }

    /// A future that is ready once this clock reads `deadline` or later:
    /// on the system clock a timer of the runtime, on a manual one ready
    /// when `advance` has moved it there (connection timeouts in tests).
    pub fn sleep_until(&self, deadline: SystemTime) -> ClockSleep {
        match &self.0 {
            ClockKind::System => {
                let wait = deadline
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO);
                ClockSleep(SleepKind::System(Box::pin(tokio::time::sleep(wait))))
            }
            ClockKind::Manual(m) => ClockSleep(SleepKind::Manual {
                clock: Arc::clone(m),
                deadline,
            }),
        }
    }

    pub fn is_manual(&self) -> bool {
        matches!(self.0, ClockKind::Manual(_))
    }
}

/// What `Clock::sleep_until` returns.
#[derive(Debug)]
pub struct ClockSleep(SleepKind);

#[derive(Debug)]
enum SleepKind {
    System(Pin<Box<tokio::time::Sleep>>),
    Manual {
        clock: Arc<Manual>,
        deadline: SystemTime,
    },
}

impl Future for ClockSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.get_mut().0 {
            SleepKind::System(sleep) => sleep.as_mut().poll(cx),
            SleepKind::Manual { clock, deadline } => {
                // Registered before the time is read, so an `advance`
                // between the two cannot be missed.
                let mut sleepers = clock.sleepers.lock().unwrap_or_else(|p| p.into_inner());
                if !sleepers.iter().any(|w| w.will_wake(cx.waker())) {
                    sleepers.push(cx.waker().clone());
                }
                drop(sleepers);
                if clock.now() >= *deadline {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

/// The per-IP limiter (governor) reads the same clock, so tests move its
/// time too.
impl governor::clock::Clock for Clock {
    type Instant = SystemTime;

    fn now(&self) -> SystemTime {
        self.now_system()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_beyond_rfc3339_are_said_in_words_not_formatted() {
        let far = Timestamp::from_millis(0).plus(Duration::from_secs(9000 * 366 * 24 * 3600));
        assert_eq!(far.to_string(), "after 9999-12-31T23:59:59Z");
        assert_eq!(Timestamp::LAST.to_string(), "9999-12-31T23:59:59Z");
        assert_eq!(
            Timestamp::from_millis(i64::MAX).to_string(),
            "after 9999-12-31T23:59:59Z"
        );
        assert_eq!(
            Timestamp::from_millis(-1).to_string(),
            "before 1970-01-01T00:00:00Z"
        );
        let _ = Timestamp::from_millis(i64::MIN).to_system_time();
    }

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_000));
        assert_eq!(clock.now(), Timestamp::from_millis(1_000_000));
        clock.advance(Duration::from_secs(60));
        assert_eq!(clock.now(), Timestamp::from_millis(1_060_000));
    }

    #[tokio::test]
    async fn a_sleep_on_a_manual_clock_ends_when_the_clock_is_moved_past_it() {
        let clock = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_000));
        let deadline = clock.now_system() + Duration::from_secs(10);
        let sleep = tokio::spawn(clock.sleep_until(deadline));
        clock.advance(Duration::from_secs(9));
        tokio::task::yield_now().await;
        assert!(!sleep.is_finished(), "not yet at the deadline");
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(10), sleep)
            .await
            .expect("woken by advance")
            .unwrap();
    }

    #[test]
    fn timestamps_display_as_rfc3339_utc() {
        assert_eq!(
            Timestamp::from_millis(0).to_string(),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn until_is_zero_for_the_past() {
        let t = Timestamp::from_millis(5_000);
        assert_eq!(t.until(Timestamp::from_millis(1_000)), Duration::ZERO);
        assert_eq!(
            t.until(Timestamp::from_millis(7_000)),
            Duration::from_secs(2)
        );
    }
}
