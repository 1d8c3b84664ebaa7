//! The lockout rule (the seed; SPEC §4) as pure functions of the stored
//! state and the time: more than `threshold` consecutive failures for one
//! counter lock it for `duration`, counted from the failure that set the
//! lock. Tries during the lock are refused before any hashing and do not
//! extend it. A success resets the count. When a lock has run out the
//! counter starts afresh, and a streak of failures is forgotten a day
//! after its last failure (so that the table of counters does not grow
//! without end, and a typo a month ago does not count towards today's
//! lock).
//!
//! **Growing locks** (issue 11): a lock that follows another within a day
//! of its end is twice as long, up to `max_duration` (24 h by default):
//! 20 min, 40 min, 80 min, … So a guesser who waits out every lock gets at
//! most `threshold + 1` tries per cycle and about seven cycles a day
//! (`guess_budget_per_day`).
//!
//! The counters (`lockout_key`s): one per typed ID (`id:alice`, what a
//! stranger sees locked), one per account across its email and username
//! (`account:7`, which bounds the guesses per account), one per trusted
//! device (`device:…`, see `auth::device`).

use super::{AuditEvent, AuditKind, LoginAttempt, UserId};
use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long after its last failure a streak of failures is forgotten.
pub const STREAK_FORGOTTEN_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures allowed in a row; one more sets the lock (seed: 10).
    pub threshold: u32,
    /// How long a first lock lasts (seed: 20 minutes).
    pub duration: Duration,
    /// The longest a lock grows to, doubling per consecutive cycle.
    pub max_duration: Duration,
}

/// The counter of an account across its names.
pub fn account_lockout_key(user: UserId) -> String {
    format!("account:{}", user.0)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockoutState {
    /// Consecutive failures since the last success or lock.
    pub failures: u32,
    pub last_failure: Option<Timestamp>,
    pub locked_until: Option<Timestamp>,
    /// Set by an admin (`gatehouse user lock`): only `user unlock` lifts
    /// it, not a password reset by mail.
    #[serde(default)]
    pub by_admin: bool,
    /// Locks in a row, each within a day of the previous one's end: the
    /// next lock lasts `duration × 2^cycles` (capped).
    #[serde(default)]
    pub cycles: u32,
}

impl LockoutState {
    /// Whether this counter stays when its account's password is reset by
    /// a mailed link: an admin's lock does (only `user unlock` lifts it);
    /// a failure lock ends, which is the owner's way out.
    pub fn survives_reset(&self) -> bool {
        self.by_admin
    }
}

/// One failed login, as the store counts it (`LockoutStore::record_failure`).
#[derive(Clone, Debug)]
pub struct FailedLogin {
    /// The counter: `LoginId::lockout_key` of what was typed (or a
    /// device's, for a browser with a device cookie).
    pub key: String,
    /// The account's own counter too (`account_lockout_key`), counted in
    /// the same transaction.
    pub account_key: Option<String>,
    /// What was typed, for the audit event of a lock.
    pub typed: String,
    /// The account the ID names, if any: the try joins its history.
    pub user: Option<UserId>,
    pub ip: String,
    pub at: Timestamp,
}

impl FailedLogin {
    /// The try for the account's login history.
    pub fn attempt(&self) -> LoginAttempt {
        LoginAttempt {
            at: self.at,
            ip: self.ip.clone(),
            ok: false,
        }
    }

    /// What the audit log records for this failure and what it did. A
    /// failure for an ID without an account writes no row of its own (a
    /// guesser spraying made-up IDs must not grow the log by a row a try,
    /// issue 11): its counter is the aggregate, and the lock it reaches is
    /// recorded with the number of tries.
    pub fn audit_events(&self, outcome: &FailureOutcome, threshold: u32) -> Vec<AuditEvent> {
        let mut events = Vec::new();
        if self.user.is_some() {
            events.push(
                AuditEvent::new(self.at, AuditKind::LoginFailed, "anonymous")
                    .maybe_user(self.user)
                    .ip(&self.ip),
            );
        }
        let tries = threshold.saturating_add(1);
        if let AfterFailure::NowLocked { until } = outcome.id {
            events.push(
                AuditEvent::new(self.at, AuditKind::LockSet, "system")
                    .maybe_user(self.user)
                    .subject(self.typed.clone())
                    .ip(&self.ip)
                    .detail(format!(
                        "until {until}, after {tries} failed logins in a row"
                    )),
            );
        }
        if let Some(AfterFailure::NowLocked { until }) = outcome.account {
            events.push(
                AuditEvent::new(self.at, AuditKind::LockSet, "system")
                    .maybe_user(self.user)
                    .subject("the account, under any of its names")
                    .ip(&self.ip)
                    .detail(format!(
                        "until {until}, after {tries} failed logins in a row (any name)"
                    )),
            );
        }
        events
    }
}

/// What one failure did to its counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureOutcome {
    /// To the typed ID's (or the device's) counter.
    pub id: AfterFailure,
    /// To the account's, when it was counted.
    pub account: Option<AfterFailure>,
}

/// May this ID try to log in now?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    Open,
    Locked { until: Timestamp },
}

/// What a failure did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// Counted; the ID may try again.
    Counted { failures: u32 },
    /// This failure set the lock.
    NowLocked { until: Timestamp },
    /// The ID was locked already (by a failure checked at the same time);
    /// nothing changed.
    StillLocked { until: Timestamp },
}

impl LockoutPolicy {
    pub fn gate(&self, state: &LockoutState, now: Timestamp) -> Gate {
        match state.locked_until {
            Some(until) if now < until => Gate::Locked { until },
            _ => Gate::Open,
        }
    }

    /// The state after one more failure at `now`. Callers have checked the
    /// gate first; a failure during a lock is not counted and changes
    /// nothing (the lock is not extended).
    pub fn after_failure(
        &self,
        state: &LockoutState,
        now: Timestamp,
    ) -> (LockoutState, AfterFailure) {
        if let Gate::Locked { until } = self.gate(state, now) {
            return (*state, AfterFailure::StillLocked { until });
        }
        // A lock that has run out, or a streak that is stale, leaves a
        // fresh count behind it.
        let previous = if state.locked_until.is_some() || is_stale(state, now) {
            0
        } else {
            state.failures
        };
        // Cycles in a row are remembered for a day after the last lock's
        // end (or the last failure, when there was no lock).
        let cycles = match state.locked_until {
            Some(until) if now < until.plus(STREAK_FORGOTTEN_AFTER) => state.cycles,
            None if !is_stale(state, now) => state.cycles,
            _ => 0,
        };
        let failures = previous.saturating_add(1);
        if failures > self.threshold {
            let until = now.plus(self.lock_length(cycles));
            let next = LockoutState {
                failures: 0,
                last_failure: Some(now),
                locked_until: Some(until),
                by_admin: false,
                cycles: cycles.saturating_add(1),
            };
            (next, AfterFailure::NowLocked { until })
        } else {
            let next = LockoutState {
                failures,
                last_failure: Some(now),
                locked_until: None,
                by_admin: false,
                cycles,
            };
            (next, AfterFailure::Counted { failures })
        }
    }

    /// How long the lock after `cycles` earlier ones lasts.
    pub fn lock_length(&self, cycles: u32) -> Duration {
        let max = self.max_duration.max(self.duration);
        self.duration
            .checked_mul(1u32.checked_shl(cycles).unwrap_or(u32::MAX))
            .map_or(max, |d| d.min(max))
    }

    /// The most passwords one counter lets be tried in a day by someone
    /// who waits out every lock: `threshold + 1` per cycle, as many cycles
    /// as fit in 24 hours of growing locks.
    pub fn guess_budget_per_day(&self) -> u64 {
        let day = Duration::from_secs(24 * 3600);
        let (mut spent, mut cycles) = (Duration::ZERO, 0u32);
        while spent < day {
            spent += self.lock_length(cycles);
            cycles += 1;
        }
        u64::from(cycles) * (u64::from(self.threshold) + 1)
    }

    /// Whether a stored state no longer matters at `now`, so that it can be
    /// deleted: no lock in force, no streak and no cycle that still counts.
    pub fn is_idle(&self, state: &LockoutState, now: Timestamp) -> bool {
        let cycles_forgotten = state.cycles == 0
            || state
                .locked_until
                .is_none_or(|until| now >= until.plus(STREAK_FORGOTTEN_AFTER));
        self.gate(state, now) == Gate::Open
            && cycles_forgotten
            && (state.failures == 0 || state.locked_until.is_some() || is_stale(state, now))
    }
}

fn is_stale(state: &LockoutState, now: Timestamp) -> bool {
    state
        .last_failure
        .is_none_or(|t| now >= t.plus(STREAK_FORGOTTEN_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        threshold: 10,
        duration: Duration::from_secs(20 * 60),
        max_duration: Duration::from_secs(24 * 3600),
    };

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    fn fail_n(n: u32, at: Timestamp) -> (LockoutState, AfterFailure) {
        let mut state = LockoutState::default();
        let mut last = AfterFailure::Counted { failures: 0 };
        for _ in 0..n {
            (state, last) = POLICY.after_failure(&state, at);
        }
        (state, last)
    }

    #[test]
    fn ten_failures_leave_the_id_open() {
        let (state, last) = fail_n(10, t(0));
        assert_eq!(last, AfterFailure::Counted { failures: 10 });
        assert_eq!(POLICY.gate(&state, t(0)), Gate::Open);
    }

    #[test]
    fn the_eleventh_failure_locks_for_twenty_minutes_from_then() {
        let (state, last) = fail_n(11, t(100));
        assert_eq!(
            last,
            AfterFailure::NowLocked {
                until: t(100 + 1200)
            }
        );
        assert_eq!(
            POLICY.gate(&state, t(100 + 1199)),
            Gate::Locked { until: t(1300) }
        );
        assert_eq!(POLICY.gate(&state, t(100 + 1200)), Gate::Open);
    }

    #[test]
    fn tries_during_a_lock_do_not_extend_it() {
        let (state, _) = fail_n(11, t(0));
        let (after, outcome) = POLICY.after_failure(&state, t(600));
        assert_eq!(after, state);
        assert_eq!(outcome, AfterFailure::StillLocked { until: t(1200) });
    }

    #[test]
    fn after_a_lock_runs_out_the_count_starts_afresh() {
        let (state, _) = fail_n(11, t(0));
        let (after, outcome) = POLICY.after_failure(&state, t(1200));
        assert_eq!(outcome, AfterFailure::Counted { failures: 1 });
        assert_eq!(after.locked_until, None);
    }

    #[test]
    fn a_streak_is_forgotten_a_day_after_its_last_failure() {
        let (state, _) = fail_n(10, t(0));
        let (_, outcome) = POLICY.after_failure(&state, t(24 * 3600 - 1));
        assert_eq!(
            outcome,
            AfterFailure::NowLocked {
                until: t(24 * 3600 - 1 + 1200)
            }
        );
        let (_, outcome) = POLICY.after_failure(&state, t(24 * 3600));
        assert_eq!(outcome, AfterFailure::Counted { failures: 1 });
    }

    #[test]
    fn each_lock_in_a_row_lasts_twice_as_long_up_to_a_day() {
        let (mut state, _) = fail_n(11, t(0));
        assert_eq!(state.locked_until, Some(t(1200)));
        let mut lengths = vec![1200];
        for _ in 0..8 {
            let end = state.locked_until.unwrap();
            for _ in 0..11 {
                (state, _) = POLICY.after_failure(&state, end);
            }
            lengths.push(end.until(state.locked_until.unwrap()).as_secs());
        }
        assert_eq!(
            lengths,
            [1200, 2400, 4800, 9600, 19200, 38400, 76800, 86400, 86400]
        );
        // A day after a lock's end without failures, they start again.
        let end = state.locked_until.unwrap();
        let later = end.plus(STREAK_FORGOTTEN_AFTER);
        assert!(POLICY.is_idle(&state, later));
        assert!(!POLICY.is_idle(&state, end), "the cycle still counts");
        let mut fresh = state;
        for _ in 0..11 {
            (fresh, _) = POLICY.after_failure(&fresh, later);
        }
        assert_eq!(later.until(fresh.locked_until.unwrap()).as_secs(), 1200);
    }

    #[test]
    fn the_guess_budget_per_day_is_bounded() {
        // 20+40+80+160+320+640 min = 21 h, the 7th cycle passes 24 h.
        assert_eq!(POLICY.guess_budget_per_day(), 7 * 11);
        let flat = LockoutPolicy {
            max_duration: POLICY.duration,
            ..POLICY
        };
        assert_eq!(flat.guess_budget_per_day(), 72 * 11, "without growth");
    }

    #[test]
    fn idle_states_can_be_forgotten() {
        assert!(POLICY.is_idle(&LockoutState::default(), t(0)));
        let (state, _) = fail_n(1, t(0));
        assert!(!POLICY.is_idle(&state, t(10_000)));
        assert!(POLICY.is_idle(&state, t(24 * 3600)));
        let (locked, _) = fail_n(11, t(0));
        assert!(!POLICY.is_idle(&locked, t(10)));
        assert!(!POLICY.is_idle(&locked, t(1200)), "its cycle counts a day");
        assert!(POLICY.is_idle(&locked, t(1200 + 24 * 3600)));
    }
}
