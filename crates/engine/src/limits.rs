//! What one instance may use: linear memory, guest CPU time, guest output.
//!
//! A guest is untrusted code sharing the process with other untrusted code,
//! so every resource it can grow on the host is capped here, per store, and
//! every refusal is logged once with the component id — the operator must be
//! able to tell which component hit which limit.
//!
//! CPU time is counted in epoch ticks ([`crate::EPOCH_TICK`]): the store's
//! epoch deadline is one tick ahead, so the deadline callback runs once for
//! every tick during which the guest was executing. That count is the
//! guest's CPU time rounded up to ticks, and blocking in the host (I/O,
//! outbound requests) does not count. Past the budget the callback fails the
//! call with [`CpuTimeExceeded`], and every request watching the store is
//! told so through its [`RequestWatch`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Limits of one instance, resolved at load from the defaults, the
/// command line, the app's runtime config and the component's own entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceLimits {
    /// Largest linear memory, in bytes: `memory.grow` past it fails.
    pub max_memory_bytes: usize,
    /// Guest CPU time per request; `None` for no limit.
    pub cpu_timeout: Option<Duration>,
    /// Bytes of stdout + stderr per request; the rest is dropped.
    pub max_output_bytes: u64,
}

impl InstanceLimits {
    /// Gyre's defaults.
    pub const DEFAULT: InstanceLimits = InstanceLimits {
        max_memory_bytes: 256 << 20,
        cpu_timeout: Some(Duration::from_secs(10)),
        max_output_bytes: 16 << 20,
    };

    pub(crate) fn cpu_ticks(&self) -> u64 {
        match self.cpu_timeout {
            None => u64::MAX,
            Some(d) => {
                let tick = crate::EPOCH_TICK.as_nanos().max(1);
                u64::try_from(d.as_nanos().div_ceil(tick))
                    .unwrap_or(u64::MAX)
                    .max(1)
            }
        }
    }
}

impl Default for InstanceLimits {
    fn default() -> Self {
        InstanceLimits::DEFAULT
    }
}

/// Everything limited per component: the instance's own limits and the
/// per-request ones its trigger enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentLimits {
    /// Memory, CPU time and output of each instance.
    pub instance: InstanceLimits,
    /// Wall-clock time for one request, response body included.
    pub request_timeout: Option<Duration>,
    /// Largest request body, in bytes.
    pub max_request_body: Option<u64>,
}

impl ComponentLimits {
    /// Gyre's defaults.
    pub const DEFAULT: ComponentLimits = ComponentLimits {
        instance: InstanceLimits::DEFAULT,
        request_timeout: Some(Duration::from_secs(60)),
        max_request_body: Some(1 << 30),
    };
}

impl Default for ComponentLimits {
    fn default() -> Self {
        ComponentLimits::DEFAULT
    }
}

/// The limits of every component of an app.
#[derive(Debug, Clone, Default)]
pub struct AppLimits {
    /// For components without an entry of their own.
    pub default: ComponentLimits,
    /// `[limits.component.<id>]`, resolved.
    pub components: std::collections::HashMap<String, ComponentLimits>,
}

impl AppLimits {
    /// The limits of component `id`.
    pub fn for_component(&self, id: &str) -> ComponentLimits {
        self.components.get(id).copied().unwrap_or(self.default)
    }
}

/// The error a guest call fails with when it used up its CPU time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimeExceeded {
    /// The budget it exceeded.
    pub limit: Duration,
}

impl std::fmt::Display for CpuTimeExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the guest used more than {:?} of CPU time", self.limit)
    }
}

impl std::error::Error for CpuTimeExceeded {}

/// A request's view of the store running it: set when the store stopped
/// the guest for exceeding its CPU time, so the request can answer 504
/// rather than 500.
#[derive(Debug, Default)]
pub struct RequestWatch {
    cpu_exceeded: AtomicBool,
}

impl RequestWatch {
    /// A new watch, to be registered with [`crate::HostState::watch_request`].
    pub fn new() -> Arc<Self> {
        Arc::new(RequestWatch::default())
    }

    /// Whether the instance was stopped for exceeding its CPU time.
    pub fn cpu_exceeded(&self) -> bool {
        self.cpu_exceeded.load(Ordering::Acquire)
    }
}

/// Per-store accounting.
pub(crate) struct Governor {
    pub(crate) component: Arc<str>,
    pub(crate) limits: InstanceLimits,
    cpu_ticks_used: u64,
    cpu_ticks_budget: u64,
    watchers: Vec<Weak<RequestWatch>>,
    memory_refused: bool,
    table_refused: bool,
}

/// Most elements of one table (funcref tables of large guests reach tens
/// of thousands).
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl Governor {
    pub(crate) fn new(component: Arc<str>, limits: InstanceLimits) -> Self {
        Governor {
            component,
            cpu_ticks_budget: limits.cpu_ticks(),
            limits,
            cpu_ticks_used: 0,
            watchers: Vec::new(),
            memory_refused: false,
            table_refused: false,
        }
    }

    /// A new request starts on this store: its CPU budget starts afresh
    /// and it is told if the store is stopped for exceeding it.
    pub(crate) fn watch(&mut self, watch: &Arc<RequestWatch>) {
        self.cpu_ticks_used = 0;
        self.watchers.retain(|w| w.strong_count() > 0);
        self.watchers.push(Arc::downgrade(watch));
    }

    /// Called by the epoch deadline callback once per tick of guest
    /// execution.
    pub(crate) fn tick(&mut self) -> Result<(), CpuTimeExceeded> {
        self.cpu_ticks_used = self.cpu_ticks_used.saturating_add(1);
        if self.cpu_ticks_used <= self.cpu_ticks_budget {
            return Ok(());
        }
        let limit = self.limits.cpu_timeout.unwrap_or(Duration::MAX);
        tracing::warn!(
            component = %self.component,
            "component `{}` used more than {limit:?} of CPU time; its instance is stopped",
            self.component
        );
        for watcher in self.watchers.drain(..) {
            if let Some(w) = watcher.upgrade() {
                w.cpu_exceeded.store(true, Ordering::Release);
            }
        }
        Err(CpuTimeExceeded { limit })
    }
}

impl ResourceLimiter for Governor {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let cap = self
            .limits
            .max_memory_bytes
            .min(maximum.unwrap_or(usize::MAX));
        if desired <= cap {
            return Ok(true);
        }
        if !self.memory_refused {
            self.memory_refused = true;
            gyre_telemetry::metrics().memory_refused(&self.component);
            tracing::warn!(
                component = %self.component,
                "component `{}` tried to grow a memory from {} to {} MiB; the limit is {} MiB (`max_instance_memory`): memory.grow fails",
                self.component,
                current >> 20,
                desired >> 20,
                self.limits.max_memory_bytes >> 20,
            );
        }
        Ok(false)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let cap = MAX_TABLE_ELEMENTS.min(maximum.unwrap_or(usize::MAX));
        if desired <= cap {
            return Ok(true);
        }
        if !self.table_refused {
            self.table_refused = true;
            tracing::warn!(
                component = %self.component,
                "component `{}` tried to grow a table to {desired} elements; the limit is {MAX_TABLE_ELEMENTS}",
                self.component
            );
        }
        Ok(false)
    }

    fn instances(&self) -> usize {
        1_000
    }

    fn tables(&self) -> usize {
        1_000
    }

    fn memories(&self) -> usize {
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_budget_is_counted_in_ticks_and_reset_per_request() {
        let limits = InstanceLimits {
            cpu_timeout: Some(crate::EPOCH_TICK * 2 + crate::EPOCH_TICK / 2),
            ..InstanceLimits::DEFAULT
        };
        assert_eq!(limits.cpu_ticks(), 3, "rounded up to whole ticks");
        let mut governor = Governor::new(Arc::from("api"), limits);
        let first = RequestWatch::new();
        governor.watch(&first);
        for _ in 0..3 {
            assert!(governor.tick().is_ok());
        }
        // A new request on the same (reused) instance starts a new budget.
        let second = RequestWatch::new();
        governor.watch(&second);
        for _ in 0..3 {
            assert!(governor.tick().is_ok());
        }
        assert!(governor.tick().is_err());
        assert!(first.cpu_exceeded() && second.cpu_exceeded());
    }

    #[test]
    fn memory_past_the_cap_is_refused_not_trapped() {
        let limits = InstanceLimits {
            max_memory_bytes: 1 << 20,
            ..InstanceLimits::DEFAULT
        };
        let mut governor = Governor::new(Arc::from("api"), limits);
        assert!(matches!(
            governor.memory_growing(0, 1 << 20, None),
            Ok(true)
        ));
        assert!(matches!(
            governor.memory_growing(1 << 20, 2 << 20, None),
            Ok(false)
        ));
        assert!(matches!(
            governor.table_growing(0, 200_000, None),
            Ok(false)
        ));
    }

    #[test]
    fn no_cpu_timeout_means_no_budget() {
        let limits = InstanceLimits {
            cpu_timeout: None,
            ..InstanceLimits::DEFAULT
        };
        assert_eq!(limits.cpu_ticks(), u64::MAX);
    }
}
