//! Retry delays: exponential backoff with full jitter (SYNC.md principle 12).
//!
//! After the n-th consecutive failure (n from 1) the ceiling is `initial · 2^(n−1)`, capped at
//! `max`; the delay is drawn uniformly from `[0, ceiling]` ("full jitter", AWS Architecture
//! Blog, "Exponential Backoff And Jitter", 2015), so 200 consoles that lost the server at the
//! same instant do not come back in lockstep (S15). A floor of `initial / 2` keeps a console
//! from spinning when the draw is near zero.

use std::time::Duration;

/// The backoff schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// The ceiling after the first failure.
    pub initial: Duration,
    /// The largest ceiling.
    pub max: Duration,
}

impl Default for BackoffPolicy {
    /// 0.5 s → 60 s.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl BackoffPolicy {
    /// The ceiling of the delay after `failures` consecutive failures (0 → zero).
    pub fn ceiling(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let shift = (failures - 1).min(30);
        let grown = self.initial.saturating_mul(1u32 << shift);
        grown.min(self.max)
    }

    /// The delay after `failures` consecutive failures, given a uniform draw `unit` in
    /// `[0, 1]`: `max(initial / 2, unit · ceiling)`, never above [`BackoffPolicy::max`].
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(failures);
        if ceiling.is_zero() {
            return Duration::ZERO;
        }
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let drawn = ceiling.mul_f64(unit);
        drawn.max((self.initial / 2).min(ceiling))
    }
}

/// Counts consecutive failures and draws the next delay.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    failures: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A fresh backoff (no failure yet).
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            failures: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// The same, with a seeded random source (tests).
    pub fn with_seed(policy: BackoffPolicy, seed: u64) -> Self {
        Self {
            policy,
            failures: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Records one more failure and returns how long to wait before the next try.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let unit = self.rng.f64();
        self.policy.delay(self.failures, unit)
    }

    /// A success: the next failure starts the schedule again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let p = BackoffPolicy::default();
        let ms = |n| p.ceiling(n).as_millis();
        assert_eq!(ms(0), 0);
        assert_eq!(ms(1), 500);
        assert_eq!(ms(2), 1_000);
        assert_eq!(ms(3), 2_000);
        assert_eq!(ms(7), 32_000);
        assert_eq!(ms(8), 60_000);
        assert_eq!(ms(1_000), 60_000);
    }

    #[test]
    fn delay_is_full_jitter_with_floor() {
        let p = BackoffPolicy::default();
        assert_eq!(p.delay(4, 0.5), Duration::from_millis(2_000));
        assert_eq!(p.delay(4, 0.0), Duration::from_millis(250));
        assert_eq!(p.delay(4, 1.0), Duration::from_millis(4_000));
        assert_eq!(p.delay(20, 1.0), Duration::from_secs(60));
        assert_eq!(p.delay(20, f64::NAN), Duration::from_secs(60));
        assert_eq!(p.delay(20, 7.0), Duration::from_secs(60));
    }

    #[test]
    fn delays_are_bounded_and_spread() {
        let p = BackoffPolicy::default();
        let mut b = Backoff::with_seed(p, 7);
        let delays: Vec<Duration> = (0..40).map(|_| b.next_delay()).collect();
        assert_eq!(b.failures(), 40);
        assert!(delays.iter().all(|d| *d >= Duration::from_millis(250)));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(60)));
        // Late delays are drawn from [0.25 s, 60 s]: they differ (jitter), not all at the cap.
        let late: std::collections::BTreeSet<u128> =
            delays[10..].iter().map(Duration::as_millis).collect();
        assert!(late.len() > 20, "jittered delays: {late:?}");
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.next_delay() <= Duration::from_millis(500));
    }

    #[test]
    fn two_consoles_do_not_retry_in_lockstep() {
        let p = BackoffPolicy::default();
        let mut a = Backoff::with_seed(p, 1);
        let mut b = Backoff::with_seed(p, 2);
        let same = (0..20).filter(|_| a.next_delay() == b.next_delay()).count();
        assert!(same < 3, "{same} equal delays out of 20");
    }
}
