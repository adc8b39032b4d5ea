//! `process_*` series in the names every Prometheus client library uses
//! (resident and virtual memory, CPU seconds, open descriptors, threads,
//! start time), read from `/proc/self` at scrape time. Elsewhere than
//! Linux they are left out.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use crate::metrics::{Value, encode_value};

/// Linux's fixed clock tick for `/proc` times (`USER_HZ`).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug)]
pub(crate) struct ProcessCollector {
    /// When the system booted, seconds since the epoch (`/proc/stat` btime).
    boot_time: Option<f64>,
}

impl ProcessCollector {
    pub(crate) fn new() -> Self {
        let boot_time = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        });
        ProcessCollector { boot_time }
    }
}

/// What `/proc/self` says.
struct Sample {
    cpu_seconds: f64,
    threads: f64,
    start_ticks: f64,
    virtual_bytes: f64,
    resident_bytes: f64,
    open_fds: f64,
}

fn sample() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field N is fields[N - 3].
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|k| k * 1024.0)
    };
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()) as f64;
    Some(Sample {
        cpu_seconds: (field(14)? + field(15)?) / TICKS_PER_SECOND,
        threads: field(20)?,
        start_ticks: field(22)?,
        virtual_bytes: kib("VmSize:")?,
        resident_bytes: kib("VmRSS:")?,
        open_fds,
    })
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = sample() else {
            return Ok(());
        };
        let bytes = Some(&Unit::Bytes);
        let seconds = Some(&Unit::Seconds);
        let series = [
            (
                "process_cpu",
                "User and system CPU time",
                seconds,
                Value::Counter(s.cpu_seconds),
            ),
            (
                "process_resident_memory",
                "Resident memory",
                bytes,
                Value::Gauge(s.resident_bytes),
            ),
            (
                "process_virtual_memory",
                "Virtual memory",
                bytes,
                Value::Gauge(s.virtual_bytes),
            ),
            (
                "process_open_fds",
                "Open file descriptors",
                None,
                Value::Gauge(s.open_fds),
            ),
            (
                "process_threads",
                "OS threads",
                None,
                Value::Gauge(s.threads),
            ),
        ];
        for (name, help, unit, value) in series {
            encode_value(&mut encoder, name, help, unit, value)?;
        }
        if let Some(boot) = self.boot_time {
            encode_value(
                &mut encoder,
                "process_start_time",
                "Start time since the Unix epoch",
                seconds,
                Value::Gauge(boot + s.start_ticks / TICKS_PER_SECOND),
            )?;
        }
        Ok(())
    }
}
