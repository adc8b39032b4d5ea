//! `allowed_outbound_hosts`: which destinations a component may reach.
//!
//! Entries are parsed exactly as Spin parses them (`scheme://host[:port]`,
//! `*` wildcards, `*.domain` suffixes, CIDR ranges, `self`, service
//! chaining through `*.spin.internal`, scheme default ports, end-exclusive
//! port ranges), and one [`AllowedHosts`] decides for every kind of outbound
//! connection — HTTP, Redis, PostgreSQL, MySQL, MQTT. Nothing here does I/O:
//! the decision is a pure function of the list and the destination, so it is
//! tested as a table and fuzzed.

mod blocked;

use std::net::IpAddr;

use ipnet::IpNet;

pub use blocked::BlockedNetworks;

/// An entry that is not valid, with what would be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid allowed_outbound_hosts entry {entry:?}: {message}")]
pub struct AllowListError {
    /// The entry as written.
    pub entry: String,
    /// What is wrong.
    pub message: String,
    /// How to write it instead.
    pub help: Option<String>,
}

/// Which schemes an entry allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemePattern {
    /// `*`.
    Any,
    /// One scheme, lowercase.
    Is(String),
}

/// Which hosts an entry allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any host, including self-requests.
    Any,
    /// `self` / `self.alt`: requests to the app itself.
    SelfApp,
    /// `*.example.com`: proper subdomains of a domain (stored as `.example.com`).
    Subdomains(String),
    /// A domain name, lowercase.
    Domain(String),
    /// An IP address, or a CIDR range.
    Network(IpNet),
    /// `*.spin.internal`: every component of the application.
    AnyComponent,
    /// `<id>.spin.internal`: one component of the application.
    Component(String),
}

/// Which ports an entry allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPattern {
    /// `*`.
    Any,
    /// One port.
    Is(u16),
    /// `a..b`: `a` up to, not including, `b` (as Spin).
    Range(u16, u16),
}

/// One parsed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// Scheme rule.
    pub scheme: SchemePattern,
    /// Host rule.
    pub host: HostPattern,
    /// Port rule.
    pub port: PortPattern,
}

/// The port a scheme uses when none is given.
pub fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" => 80,
        "https" => 443,
        "postgres" => 5432,
        "mysql" => 3306,
        "redis" => 6379,
        "mqtt" => 1883,
        _ => return None,
    })
}

const ALLOW_ALL_HELP: &str = "to allow every destination write `*://*:*`";

impl AllowedHost {
    /// Parses one entry (after template expansion).
    pub fn parse(entry: &str) -> Result<Self, AllowListError> {
        let error = |message: &str, help: Option<&str>| AllowListError {
            entry: entry.to_string(),
            message: message.to_string(),
            help: help.map(str::to_string),
        };
        let trimmed = entry.trim();
        if trimmed == "insecure:allow-all" {
            return Err(error(
                "`insecure:allow-all` is not supported in allowed_outbound_hosts",
                Some(ALLOW_ALL_HELP),
            ));
        }
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            let help = match trimmed {
                "" | "*" | ":" | "?" | "*:*" => ALLOW_ALL_HELP.to_string(),
                other => format!("write the scheme too, e.g. `https://{other}` or `*://{other}`"),
            };
            return Err(error("missing scheme (`scheme://`)", Some(&help)));
        };
        let scheme = parse_scheme(scheme)
            .map_err(|m| error(&m, Some("write one scheme such as `https`, or `*` for any")))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if !path.is_empty() && path != "/" {
            // A CIDR range has a `/` too: `10.0.0.0/8` or `10.0.0.0/8:5432`.
            if let Some(entry) = try_cidr(&scheme, rest) {
                return entry.map_err(|m| error(&m, None));
            }
            return Err(error(
                "a path is not allowed here",
                Some("give only scheme, host and port, e.g. `https://example.com`"),
            ));
        }
        let (host, port) = split_host_port(authority).map_err(|m| error(&m, None))?;
        let host = parse_host(host).map_err(|m| {
            error(
                &m,
                Some("hosts are `*`, `*.example.com`, `example.com`, an IP address, a CIDR range or `self`"),
            )
        })?;
        let port = parse_port(&scheme, port).map_err(|m| {
            error(
                &m,
                Some("add a port, e.g. `:8080`, a range `:8000..8100`, or `:*` for any"),
            )
        })?;
        Ok(AllowedHost { scheme, host, port })
    }

    fn allows(&self, destination: &Destination<'_>) -> bool {
        let scheme_ok = match &self.scheme {
            SchemePattern::Any => true,
            SchemePattern::Is(s) => s == destination.scheme,
        };
        if !scheme_ok {
            return false;
        }
        let host_ok = match (&self.host, &destination.host) {
            (HostPattern::Any, _) => true,
            (HostPattern::SelfApp, Host::SelfApp) => true,
            (_, Host::SelfApp) => false,
            (HostPattern::AnyComponent, Host::Component(_)) => true,
            (HostPattern::Component(id), Host::Component(want)) => id == want,
            (_, Host::Component(_)) => false,
            (HostPattern::Subdomains(suffix), Host::Domain(d)) => {
                d.len() > suffix.len() && d.ends_with(suffix.as_str())
            }
            (HostPattern::Domain(name), Host::Domain(d)) => name == d,
            (HostPattern::Network(net), Host::Ip(ip)) => net.contains(ip),
            _ => false,
        };
        if !host_ok {
            return false;
        }
        let port = destination
            .port
            .or_else(|| default_port(destination.scheme));
        match (self.port, port) {
            (PortPattern::Any, _) => true,
            (PortPattern::Is(p), Some(port)) => p == port,
            (PortPattern::Range(a, b), Some(port)) => a <= port && port < b,
            (_, None) => false,
        }
    }
}

fn parse_scheme(scheme: &str) -> Result<SchemePattern, String> {
    if scheme == "*" {
        return Ok(SchemePattern::Any);
    }
    if scheme.starts_with('{') {
        return Err("scheme lists (`{a,b}`) are not supported: write one entry per scheme".into());
    }
    if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(format!("`{scheme}` is not a scheme"));
    }
    Ok(SchemePattern::Is(scheme.to_ascii_lowercase()))
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = authority.strip_prefix('[') {
        // [v6]:port
        let Some(end) = rest.find(']') else {
            return Err("unclosed `[` in an IPv6 address".into());
        };
        let host = &rest[..end];
        let after = &rest[end + 1..];
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(format!("unexpected `{after}` after the IPv6 address")),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Ok((host, Some(port))),
        Some(_) => Err("IPv6 addresses must be written in brackets, e.g. `[::1]:8080`".into()),
        None => Ok((authority, None)),
    }
}

fn parse_host(host: &str) -> Result<HostPattern, String> {
    let host = host.to_ascii_lowercase();
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if host == "self" || host == "self.alt" {
        return Ok(HostPattern::SelfApp);
    }
    if host.contains('{') || host.contains('}') {
        return Err("host lists (`{a,b}`) are not supported: write one entry per host".into());
    }
    if host == "*.spin.internal" {
        return Ok(HostPattern::AnyComponent);
    }
    if let Some(id) = host.strip_suffix(".spin.internal") {
        if id.is_empty() || id.contains('*') || id.contains('.') {
            return Err(format!("`{host}` does not name a component"));
        }
        return Ok(HostPattern::Component(id.to_string()));
    }
    if let Some(domain) = host.strip_prefix("*.") {
        if domain.contains('*') || !is_domain(domain) {
            return Err(format!("`{host}`: `*.` must be followed by a domain name"));
        }
        return Ok(HostPattern::Subdomains(format!(".{domain}")));
    }
    if host.contains('*') {
        return Err(format!(
            "`{host}`: `*` is allowed only as the whole host or as a leading `*.`"
        ));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(HostPattern::Network(IpNet::from(ip)));
    }
    if !is_domain(&host) {
        return Err(format!("`{host}` is not a host name"));
    }
    Ok(HostPattern::Domain(host))
}

fn is_domain(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn try_cidr(scheme: &SchemePattern, rest: &str) -> Option<Result<AllowedHost, String>> {
    let slash = rest.find('/')?;
    let (addr, after) = (&rest[..slash], &rest[slash + 1..]);
    addr.parse::<IpAddr>().ok()?;
    let (prefix, port) = match after.split_once(':') {
        Some((prefix, port)) => (prefix, Some(port)),
        None => (after.trim_end_matches('/'), None),
    };
    let net = match format!("{addr}/{prefix}").parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => return Some(Err(format!("`{addr}/{prefix}` is not a CIDR range"))),
    };
    Some(parse_port(scheme, port).map(|port| AllowedHost {
        scheme: scheme.clone(),
        host: HostPattern::Network(net.trunc()),
        port,
    }))
}

fn parse_port(scheme: &SchemePattern, port: Option<&str>) -> Result<PortPattern, String> {
    match port {
        None | Some("") => {
            let default = match scheme {
                SchemePattern::Is(s) => default_port(s),
                SchemePattern::Any => None,
            };
            match default {
                Some(p) => Ok(PortPattern::Is(p)),
                None => {
                    let name = match scheme {
                        SchemePattern::Is(s) => s.as_str(),
                        SchemePattern::Any => "*",
                    };
                    Err(format!(
                        "no port was provided and the scheme `{name}` does not have a known default port number"
                    ))
                }
            }
        }
        Some("*") => Ok(PortPattern::Any),
        Some(p) => {
            if let Some((a, b)) = p.split_once("..") {
                let a: u16 = a
                    .parse()
                    .map_err(|_| format!("`{p}` is not a port range"))?;
                let b: u16 = b
                    .parse()
                    .map_err(|_| format!("`{p}` is not a port range"))?;
                if a >= b {
                    return Err(format!(
                        "`{p}`: a range must go upwards (the end is excluded)"
                    ));
                }
                Ok(PortPattern::Range(a, b))
            } else {
                p.parse::<u16>()
                    .map(PortPattern::Is)
                    .map_err(|_| format!("`{p}` is not a port number"))
            }
        }
    }
}

/// A destination's host, as the allow-list sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// The application itself (relative URL, `self`, `self.alt`).
    SelfApp,
    /// `<id>.spin.internal`.
    Component(String),
    /// An IP address.
    Ip(IpAddr),
    /// A domain name, lowercase.
    Domain(String),
}

/// Where an outbound connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination<'a> {
    /// Scheme, lowercase (`https`, `redis`, `postgres`…).
    pub scheme: &'a str,
    /// Host.
    pub host: Host,
    /// Port, if the URL gives one (else the scheme's default applies).
    pub port: Option<u16>,
}

impl Host {
    /// Classifies a URL's host.
    pub fn parse(host: &str) -> Host {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host == "self" || host == "self.alt" {
            return Host::SelfApp;
        }
        if let Some(id) = host.strip_suffix(".spin.internal") {
            return Host::Component(id.to_string());
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Domain(host.trim_end_matches('.').to_string()),
        }
    }
}

/// A component's parsed `allowed_outbound_hosts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

impl AllowedHosts {
    /// Parses every entry (after template expansion). An entry that
    /// expands to nothing, `http://` or `https://` is dropped, as in Spin
    /// (an optional endpoint left unset).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, AllowListError> {
        let mut parsed = Vec::new();
        for entry in entries {
            let entry = entry.as_ref();
            if matches!(entry.trim(), "" | "http://" | "https://") {
                continue;
            }
            parsed.push(AllowedHost::parse(entry)?);
        }
        Ok(AllowedHosts { entries: parsed })
    }

    /// Whether any entry allows `destination`.
    pub fn allows(&self, destination: &Destination<'_>) -> bool {
        self.entries.iter().any(|e| e.allows(destination))
    }

    /// Whether a URL is allowed. URLs that do not parse are denied.
    pub fn allows_url(&self, url: &str) -> bool {
        match url::Url::parse(url) {
            Ok(url) => match url.host_str() {
                Some(host) => self.allows(&Destination {
                    scheme: url.scheme(),
                    host: Host::parse(host),
                    port: url.port(),
                }),
                None => false,
            },
            Err(_) => false,
        }
    }

    /// The parsed entries.
    pub fn entries(&self) -> &[AllowedHost] {
        &self.entries
    }

    /// Whether no destination at all is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
