//! Rate limits on the app's clock: `KeyedLimiter` (so many events per
//! period for each key: an address, an account) and `ClientLimiter`, the
//! per-client-address limit of logins, signups and mail requests (SPEC §4:
//! it slows one address that guesses across many IDs, which the per-ID
//! lockout cannot see; generous by default because an office behind one
//! NAT address shares it).

use crate::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

type Keyed<K> = RateLimiter<K, HashMapStateStore<K>, Clock, NoOpMiddleware<SystemTime>>;

/// `count` events per `period` for each key, all of which may come at once;
/// time from the app's clock.
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: Keyed<K>,
    clock: Clock,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn new(count: NonZeroU32, period: Duration, clock: Clock) -> Self {
        let quota = Quota::with_period(period / count.get())
            .expect("a limiter period is never zero")
            .allow_burst(count);
        Self {
            limiter: RateLimiter::hashmap_with_clock(quota, clock.clone()),
            clock,
        }
    }

    /// Takes one event for `key`, or says how long to wait for the next.
    pub fn check(&self, key: K) -> Result<(), Duration> {
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now_system()))
    }

    /// Forgets keys whose budget is full again, to bound memory.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Tries per client address; one for each use (login, signup, mail
/// requests), named by the field that holds it.
pub struct ClientLimiter(KeyedLimiter<IpAddr>);

impl ClientLimiter {
    /// `per_minute` tries per client, all of which may come at once.
    pub fn new(per_minute: NonZeroU32, clock: Clock) -> Self {
        Self(KeyedLimiter::new(
            per_minute,
            Duration::from_secs(60),
            clock,
        ))
    }

    /// Takes one try for `ip`, or says how long to wait for the next.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.0.check(client_key(ip))
    }

    pub fn forget_idle(&self) {
        self.0.forget_idle();
    }
}

/// One IPv6 client usually has a whole /64: limit the /64, not each
/// address in it.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_quota_then_waits_for_the_clock() {
        let clock = Clock::manual(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
        let limiter = ClientLimiter::new(NonZeroU32::new(3).unwrap(), clock.clone());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check(ip).is_ok());
        }
        let wait = limiter.check(ip).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(
            limiter.check("192.0.2.2".parse().unwrap()).is_ok(),
            "others are not affected"
        );
        clock.advance(wait);
        assert!(limiter.check(ip).is_ok());
    }

    #[test]
    fn an_ipv6_slash_64_counts_as_one_client() {
        assert_eq!(
            client_key("2001:db8::1".parse().unwrap()),
            client_key("2001:db8::ffff:1".parse().unwrap())
        );
        assert_ne!(
            client_key("2001:db8:0:1::1".parse().unwrap()),
            client_key("2001:db8:0:2::1".parse().unwrap())
        );
    }
}
