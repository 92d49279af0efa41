//! The per-key rate limit: a GCRA bucket per API key (governor), `per_second` requests a second
//! with a burst of as many.

use std::num::NonZeroU32;
use std::time::Duration;

use coupon_core::apikey::ApiKeyId;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// A rate limit shared by the requests of each key.
pub(crate) struct RateLimit {
    limiter: DefaultKeyedRateLimiter<ApiKeyId>,
}

impl RateLimit {
    /// `per_second` requests a second per key, with an equal burst; `None` for 0 (no limit).
    pub(crate) fn per_second(per_second: u32) -> Option<RateLimit> {
        let rate = NonZeroU32::new(per_second)?;
        Some(RateLimit {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(rate)),
        })
    }

    /// Counts a request of `key`; `Err(wait)` when it is over the limit.
    pub(crate) fn check(&self, key: ApiKeyId) -> Result<(), Duration> {
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Drops the state of keys that are back to a full bucket, so memory stays bounded.
    pub(crate) fn forget_idle(&self) {
        self.limiter.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_off() {
        assert!(RateLimit::per_second(0).is_none());
    }

    #[test]
    fn burst_then_refusal_per_key() {
        let limit = RateLimit::per_second(3).expect("a limit");
        for _ in 0..3 {
            assert!(limit.check(1).is_ok());
        }
        let wait = limit.check(1).expect_err("over the burst");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limit.check(2).is_ok(), "each key has its own bucket");
    }
}
