//! `[limits]` in the runtime config: Gyre's resource governance, per app
//! and per component.
//!
//! Spin has no request deadline and no admission queue; these are Gyre's
//! own settings, so they live in a table Spin does not have. Every value is
//! optional here: the CLI resolves defaults ← command-line flags (global) ←
//! `[limits]` (the app) ← `[limits.component.<id>]` (one component).
//!
//! Sizes are written as integers (bytes) or strings with a unit (`"128MiB"`,
//! `"10MB"`); durations as `"30s"`, `"500ms"` or a bare number of seconds.
//! [`parse_size`] and [`parse_duration`] are also what the CLI's flags use,
//! so the two spellings never drift apart.

use std::time::Duration;

use indexmap::IndexMap;
use toml::de::DeValue;

use crate::names;
use crate::reader::{Result, TableReader, type_name};

/// Limits that may be set for the whole app or one component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    /// Wall-clock time for one request, response body included.
    pub request_timeout: Option<Duration>,
    /// Guest CPU time for one request (counted in epoch ticks).
    pub cpu_timeout: Option<Duration>,
    /// Largest linear memory of one instance, in bytes.
    pub max_instance_memory: Option<u64>,
    /// Largest request body, in bytes.
    pub max_request_body: Option<u64>,
    /// Guest stdout + stderr one instance may write, in bytes.
    pub max_output: Option<u64>,
}

impl LimitOverrides {
    /// `self` where set, otherwise `base`.
    pub fn or(&self, base: &LimitOverrides) -> LimitOverrides {
        LimitOverrides {
            request_timeout: self.request_timeout.or(base.request_timeout),
            cpu_timeout: self.cpu_timeout.or(base.cpu_timeout),
            max_instance_memory: self.max_instance_memory.or(base.max_instance_memory),
            max_request_body: self.max_request_body.or(base.max_request_body),
            max_output: self.max_output.or(base.max_output),
        }
    }
}

/// Limits of the HTTP listener and of admission, set for the whole app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerLimitOverrides {
    /// Requests run at once; more wait in the queue.
    pub max_concurrent_requests: Option<usize>,
    /// Requests that may wait for a slot; more get 503 at once.
    pub max_queued_requests: Option<usize>,
    /// How long a request may wait for a slot before it gets 503.
    pub queue_timeout: Option<Duration>,
    /// Open client connections; more wait to be accepted.
    pub max_connections: Option<usize>,
    /// Request headers per request.
    pub max_header_count: Option<usize>,
    /// Bytes of request line plus headers.
    pub max_header_bytes: Option<usize>,
    /// Bytes of the request target (path and query).
    pub max_uri_length: Option<usize>,
    /// Time a client has to send a request's headers, and the longest an
    /// HTTP/1 connection may sit idle between requests.
    pub header_read_timeout: Option<Duration>,
    /// Concurrent HTTP/2 streams per connection.
    pub max_h2_streams: Option<u32>,
}

/// The `[limits]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitsConfig {
    /// App-wide limits.
    pub app: LimitOverrides,
    /// Listener and admission limits.
    pub server: ServerLimitOverrides,
    /// `[limits.component.<id>]`, in file order.
    pub components: IndexMap<String, LimitOverrides>,
}

/// Parses a size: a number of bytes, optionally with a unit (`B`, `KB`,
/// `MB`, `GB`, `KiB`, `MiB`, `GiB`; case-insensitive, spaces allowed).
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{text}` is not a size"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "`{other}` is not a size unit (use B, KiB, MiB, GiB, KB, MB or GB)"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Parses a duration as Spin writes them: `"10s"`, `"500ms"`, `"250us"`,
/// `"100ns"`, `"2m"`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration"))?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "us" | "μs" => Duration::from_micros(n),
        "ns" => Duration::from_nanos(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        other => return Err(format!("`{other}` is not a duration unit (use ms, s or m)")),
    };
    Ok(d)
}

/// A positive duration from a string or an integer of seconds.
pub(crate) fn duration(
    table: &mut TableReader<'_, '_>,
    key: &'static str,
) -> Result<Option<Duration>> {
    let Some(value) = table.get(key) else {
        return Ok(None);
    };
    let text = match value.get_ref() {
        DeValue::Integer(i) => i.as_str().to_string(),
        DeValue::String(s) => s.to_string(),
        other => {
            return Err(table
                .error(
                    value.span(),
                    key,
                    format!("expected a duration, found {}", type_name(other)),
                )
                .with_help(format!("write e.g. `{key} = \"10s\"` or `\"500ms\"`")));
        }
    };
    let d = parse_duration(&text).map_err(|e| {
        table
            .error(value.span(), key, format!("not a duration: {e}"))
            .with_help(format!("write e.g. `{key} = \"10s\"` or `\"500ms\"`"))
    })?;
    if d.is_zero() {
        return Err(table
            .error(value.span(), key, "must be longer than zero")
            .with_help("omit it to use the default"));
    }
    Ok(Some(d))
}

/// A size from an integer of bytes or a string with a unit.
fn size(table: &mut TableReader<'_, '_>, key: &'static str) -> Result<Option<u64>> {
    let Some(value) = table.get(key) else {
        return Ok(None);
    };
    let parsed = match value.get_ref() {
        DeValue::Integer(i) => i
            .as_str()
            .parse::<u64>()
            .map_err(|_| "must be a positive number of bytes".to_string()),
        DeValue::String(s) => parse_size(s),
        other => Err(format!("expected a size, found {}", type_name(other))),
    };
    match parsed {
        Ok(0) => Err(table
            .error(value.span(), key, "must be larger than zero")
            .with_help("omit it to use the default")),
        Ok(n) => Ok(Some(n)),
        Err(e) => Err(table.error(value.span(), key, e).with_help(format!(
            "write e.g. `{key} = \"128MiB\"` or a number of bytes"
        ))),
    }
}

/// A whole number, at least `min`.
fn number(table: &mut TableReader<'_, '_>, key: &'static str, min: u64) -> Result<Option<u64>> {
    let Some(n) = table.integer(key)? else {
        return Ok(None);
    };
    match u64::try_from(*n.get_ref()) {
        Ok(v) if v >= min => Ok(Some(v)),
        _ => Err(table
            .error(
                n.span(),
                key,
                format!("must be a whole number of at least {min}"),
            )
            .with_help(format!("write e.g. `{key} = 100`"))),
    }
}

fn overrides(table: &mut TableReader<'_, '_>) -> Result<LimitOverrides> {
    Ok(LimitOverrides {
        request_timeout: duration(table, "request_timeout")?,
        cpu_timeout: duration(table, "cpu_timeout")?,
        max_instance_memory: size(table, "max_instance_memory")?,
        max_request_body: size(table, "max_request_body")?,
        max_output: size(table, "max_output")?,
    })
}

fn to_usize(n: Option<u64>) -> Option<usize> {
    n.map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// Reads `[limits]`.
pub(crate) fn read_limits(mut table: TableReader<'_, '_>) -> Result<LimitsConfig> {
    let app = overrides(&mut table)?;
    let server = ServerLimitOverrides {
        max_concurrent_requests: to_usize(number(&mut table, "max_concurrent_requests", 1)?),
        max_queued_requests: to_usize(number(&mut table, "max_queued_requests", 0)?),
        queue_timeout: duration(&mut table, "queue_timeout")?,
        max_connections: to_usize(number(&mut table, "max_connections", 1)?),
        max_header_count: to_usize(number(&mut table, "max_header_count", 1)?),
        max_header_bytes: to_usize(size(&mut table, "max_header_bytes")?),
        max_uri_length: to_usize(size(&mut table, "max_uri_length")?),
        header_read_timeout: duration(&mut table, "header_read_timeout")?,
        max_h2_streams: number(&mut table, "max_h2_streams", 1)?
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
    };
    let mut components = IndexMap::new();
    if let Some(list) = table.table("component")? {
        for (id, value) in list.entries() {
            let id_str = id.get_ref().to_string();
            let field = format!("limits.component.{id_str}");
            if let Err(e) = names::check_kebab_id(&id_str) {
                return Err(table
                    .src
                    .error(Some(id.span()), &field, format!("not a component id: {e}"))
                    .with_help("write `[limits.component.<id>]` with the id of a component of the manifest"));
            }
            let mut component = TableReader::from_value(table.src, &field, value)?;
            let limits = overrides(&mut component)?;
            component.finish()?;
            components.insert(id_str, limits);
        }
    }
    table.finish()?;
    Ok(LimitsConfig {
        app,
        server,
        components,
    })
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, parse_size};
    use std::time::Duration;

    #[test]
    fn sizes() {
        let table: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("1024", Some(1024)),
            ("1_000", Some(1000)),
            ("128MiB", Some(128 << 20)),
            ("128 mib", Some(128 << 20)),
            ("2GiB", Some(2 << 30)),
            ("10MB", Some(10_000_000)),
            ("4k", Some(4000)),
            ("", None),
            ("MiB", None),
            ("12 furlongs", None),
            ("99999999999999999999GiB", None),
            ("18446744073709551615GiB", None),
        ];
        for (text, expected) in table {
            assert_eq!(parse_size(text).ok(), *expected, "{text:?}");
        }
    }

    #[test]
    fn durations() {
        let table: &[(&str, Option<Duration>)] = &[
            ("30", Some(Duration::from_secs(30))),
            ("30s", Some(Duration::from_secs(30))),
            ("500ms", Some(Duration::from_millis(500))),
            ("2m", Some(Duration::from_secs(120))),
            ("250us", Some(Duration::from_micros(250))),
            ("soon", None),
            ("5 fortnights", None),
            ("", None),
        ];
        for (text, expected) in table {
            assert_eq!(parse_duration(text).ok(), *expected, "{text:?}");
        }
    }
}
