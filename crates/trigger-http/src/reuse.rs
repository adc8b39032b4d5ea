//! Instance reuse for `wasi:http/handler@0.3` components, as `spin up`'s
//! `--max-instance-reuse-count`, `--max-instance-concurrent-reuse-count` and
//! `--idle-instance-timeout` set it.
//!
//! Each figure is one value or a range `a..b` (upper bound excluded, as in
//! Spin); a range is drawn from afresh for every new instance, so a test run
//! sees instances that are fresh and instances that are long reused, and a
//! component that leaks state between requests (or relies on it lasting)
//! shows it. The draw happens once per instance, when it is created; nothing
//! is drawn per request.
//!
//! WASI 0.2 components are never reused: a fresh instance per request is the
//! isolation Spin users rely on.

use std::fmt;
use std::time::Duration;

/// One value, or a range drawn from once per instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerInstance<T> {
    /// Every instance gets this.
    Value(T),
    /// Each instance gets a value `v` with `low <= v < high`.
    Between(T, T),
}

/// What can be drawn uniformly from a half-open range.
pub trait Draw: Copy + PartialOrd {
    /// A value `v` with `low <= v < high` (`low < high`).
    fn between(low: Self, high: Self) -> Self;
}

impl Draw for usize {
    fn between(low: usize, high: usize) -> usize {
        fastrand::usize(low..high)
    }
}

impl Draw for Duration {
    fn between(low: Duration, high: Duration) -> Duration {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(nanos(low)..nanos(high)))
    }
}

impl<T: Draw> PerInstance<T> {
    /// The value for one new instance.
    pub fn draw(self) -> T {
        match self {
            PerInstance::Value(v) => v,
            PerInstance::Between(low, high) => T::between(low, high),
        }
    }

    /// Parses `N` or `A..B` with `one` parsing each bound; `what` names the
    /// value in errors ("a count", "a duration").
    fn parse(
        text: &str,
        what: &str,
        one: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Self, String> {
        let text = text.trim();
        let Some((low, high)) = text.split_once("..") else {
            return one(text).map(PerInstance::Value);
        };
        let bound = |b: &str| {
            one(b).map_err(|e| format!("`{text}`: {e} (expected {what} or a range A..B)"))
        };
        let (low, high) = (bound(low)?, bound(high)?);
        if low >= high {
            return Err(format!(
                "`{text}` is an empty range: a value is drawn from A..B with B excluded, so B must be greater than A"
            ));
        }
        Ok(PerInstance::Between(low, high))
    }
}

impl PerInstance<usize> {
    /// Parses a count of at least 1, or a range of them: `128`, `64..256`.
    pub fn parse_count(text: &str) -> Result<Self, String> {
        Self::parse(text, "a count", |s| match s.trim().parse::<usize>() {
            Ok(0) => Err("0 is too few: an instance serves at least 1 request".to_string()),
            Ok(n) => Ok(n),
            Err(_) => Err(format!("`{s}` is not a whole number")),
        })
    }
}

impl PerInstance<Duration> {
    /// Parses a duration, or a range of them: `1s`, `500ms`, `1..8s`. A bare
    /// number is seconds; units are `s`, `ms`, `us`/`μs`, `ns` (and `m`).
    pub fn parse_duration(text: &str) -> Result<Self, String> {
        Self::parse(text, "a duration", |s| {
            // "1..8s": a bound without a unit takes the seconds of Spin's rule.
            gyre_manifest::parse_duration(s)
        })
    }
}

impl<T: fmt::Display> fmt::Display for PerInstance<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PerInstance::Value(v) => write!(f, "{v}"),
            PerInstance::Between(low, high) => write!(f, "{low}..{high}"),
        }
    }
}

/// How `wasi:http/handler@0.3` instances are reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReusePolicy {
    /// Requests one instance may serve in all.
    pub max_reuse: PerInstance<usize>,
    /// Requests one instance may serve at once.
    pub max_concurrent: PerInstance<usize>,
    /// How long an idle instance is kept.
    pub idle_timeout: PerInstance<Duration>,
}

impl ReusePolicy {
    /// Spin's defaults: 128 requests per instance, 16 at once, 1 s idle.
    pub const SPIN_DEFAULT: ReusePolicy = ReusePolicy {
        max_reuse: PerInstance::Value(128),
        max_concurrent: PerInstance::Value(16),
        idle_timeout: PerInstance::Value(Duration::from_secs(1)),
    };

    /// The figures of one new instance.
    pub(crate) fn draw(&self) -> InstanceReuse {
        InstanceReuse {
            max_reuse: self.max_reuse.draw(),
            max_concurrent: self.max_concurrent.draw(),
            idle_timeout: self.idle_timeout.draw(),
        }
    }
}

impl Default for ReusePolicy {
    fn default() -> Self {
        ReusePolicy::SPIN_DEFAULT
    }
}

/// The reuse figures one instance was given when it was created.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InstanceReuse {
    pub(crate) max_reuse: usize,
    pub(crate) max_concurrent: usize,
    pub(crate) idle_timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_as_spin_writes_them() {
        let cases: &[(&str, Result<PerInstance<usize>, &str>)] = &[
            ("128", Ok(PerInstance::Value(128))),
            (" 1 ", Ok(PerInstance::Value(1))),
            ("64..256", Ok(PerInstance::Between(64, 256))),
            ("0", Err("0 is too few")),
            ("1..0", Err("`1..0`: 0 is too few")),
            ("5..5", Err("`5..5` is an empty range")),
            ("many", Err("`many` is not a whole number")),
            (
                "2..x",
                Err("`2..x`: `x` is not a whole number (expected a count"),
            ),
        ];
        for (text, expected) in cases {
            let got = PerInstance::parse_count(text);
            match (expected, &got) {
                (Ok(v), Ok(g)) => assert_eq!(v, g, "{text}"),
                (Err(start), Err(e)) => assert!(e.starts_with(start), "{text}: {e}"),
                _ => panic!("{text}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn durations_parse_with_spins_units_and_bare_seconds() {
        let ms = Duration::from_millis;
        let cases: &[(&str, Option<PerInstance<Duration>>)] = &[
            ("1", Some(PerInstance::Value(ms(1000)))),
            ("250ms", Some(PerInstance::Value(ms(250)))),
            ("10us", Some(PerInstance::Value(Duration::from_micros(10)))),
            ("10μs", Some(PerInstance::Value(Duration::from_micros(10)))),
            ("7ns", Some(PerInstance::Value(Duration::from_nanos(7)))),
            ("1..8s", Some(PerInstance::Between(ms(1000), ms(8000)))),
            ("100ms..2s", Some(PerInstance::Between(ms(100), ms(2000)))),
            ("2s..1s", None),
            ("soon", None),
        ];
        for (text, expected) in cases {
            assert_eq!(
                PerInstance::parse_duration(text).ok(),
                *expected,
                "{text}: {:?}",
                PerInstance::parse_duration(text)
            );
        }
    }

    #[test]
    fn a_range_draws_within_its_bounds_and_reaches_both_ends() {
        let range = PerInstance::Between(3usize, 6);
        let drawn: std::collections::BTreeSet<usize> = (0..1000).map(|_| range.draw()).collect();
        assert_eq!(drawn.into_iter().collect::<Vec<_>>(), vec![3, 4, 5]);
        let range = PerInstance::Between(Duration::from_millis(10), Duration::from_millis(20));
        for _ in 0..1000 {
            let d = range.draw();
            assert!(
                d >= Duration::from_millis(10) && d < Duration::from_millis(20),
                "{d:?}"
            );
        }
        assert_eq!(PerInstance::Value(9usize).draw(), 9);
    }
}
