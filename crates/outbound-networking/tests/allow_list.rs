//! `allowed_outbound_hosts` as data: entries, what they must allow and
//! refuse, and the errors of invalid ones.

use gyre_outbound_networking::{AllowedHost, AllowedHosts};

/// (entry, URLs it allows, URLs it refuses).
const VALID: &[(&str, &[&str], &[&str])] = &[
    (
        "https://example.com",
        &["https://example.com", "https://EXAMPLE.com:443/x"],
        &[
            "http://example.com",
            "https://example.com:8443",
            "https://api.example.com",
        ],
    ),
    (
        "http://example.com",
        &["http://example.com/a?b", "http://example.com:80"],
        &["http://example.com:8080", "https://example.com"],
    ),
    (
        "https://example.com:8443",
        &["https://example.com:8443"],
        &["https://example.com"],
    ),
    (
        "https://example.com/",
        &["https://example.com"],
        &["https://example.org"],
    ),
    (
        "https://*.example.com",
        &["https://api.example.com", "https://a.b.example.com"],
        &["https://example.com", "https://badexample.com"],
    ),
    (
        "*://example.com:*",
        &[
            "http://example.com:1",
            "redis://example.com",
            "mqtt://example.com:9999",
        ],
        &["http://example.org"],
    ),
    (
        "https://*:443",
        &["https://anything.io", "https://10.0.0.1"],
        &["http://anything.io", "https://anything.io:444"],
    ),
    (
        "*://*:*",
        &[
            "http://x",
            "postgres://10.1.2.3:1",
            "http://self.alt/x",
            "http://c.spin.internal",
        ],
        &[],
    ),
    (
        "http://localhost:3000..3002",
        &["http://localhost:3000", "http://localhost:3001"],
        &["http://localhost:3002", "http://localhost:2999"],
    ),
    (
        "http://127.0.0.1:*",
        &["http://127.0.0.1:1", "http://127.0.0.1"],
        &["http://127.0.0.2:80", "http://localhost"],
    ),
    (
        "http://[::1]:8080",
        &["http://[::1]:8080"],
        &["http://[::2]:8080", "http://[::1]:8081"],
    ),
    (
        "postgres://db.internal",
        &["postgres://db.internal", "postgres://db.internal:5432"],
        &["postgres://db.internal:5433"],
    ),
    ("mysql://db", &["mysql://db:3306"], &["mysql://db:3307"]),
    (
        "redis://cache",
        &["redis://cache", "redis://cache:6379"],
        &["rediss://cache:6379", "redis://cache:6380"],
    ),
    (
        "mqtt://broker",
        &["mqtt://broker:1883"],
        &["mqtt://broker:8883"],
    ),
    (
        "*://10.0.0.0/8:*",
        &["http://10.1.2.3", "postgres://10.255.0.1:1"],
        &["http://11.0.0.1", "http://example.com"],
    ),
    (
        "http://192.168.1.0/24:8080",
        &["http://192.168.1.77:8080"],
        &["http://192.168.2.1:8080", "http://192.168.1.77:80"],
    ),
    (
        "tcp://10.0.0.5:22",
        &["tcp://10.0.0.5:22"],
        &["tcp://10.0.0.5:23", "udp://10.0.0.5:22"],
    ),
    (
        "http://self",
        &["http://self/x", "http://self.alt/y"],
        &["https://self/x", "http://example.com"],
    ),
    (
        "https://self.alt",
        &["https://self.alt"],
        &["http://self.alt"],
    ),
    (
        "http://api.spin.internal",
        &["http://api.spin.internal/x"],
        &["http://web.spin.internal", "https://api.spin.internal"],
    ),
    (
        "http://*.spin.internal",
        &["http://api.spin.internal", "http://web.spin.internal/x"],
        &["http://spin.internal", "http://example.com"],
    ),
    (
        "HTTPS://Example.COM",
        &["https://example.com"],
        &["http://example.com"],
    ),
];

/// (entry, a piece of the error it must give).
const INVALID: &[(&str, &str)] = &[
    ("example.com", "missing scheme"),
    ("*", "*://*:*"),
    ("", "*://*:*"),
    ("insecure:allow-all", "*://*:*"),
    ("{http,https}://example.com", "scheme lists"),
    ("ht-tp://example.com", "is not a scheme"),
    ("https://{a,b}.com", "host lists"),
    ("https://ex*mple.com", "`*` is allowed only"),
    ("https://*.*.com", "must be followed by a domain"),
    ("https://example.com/path", "a path is not allowed"),
    ("*://example.com", "does not have a known default port"),
    (
        "ftp://example.com",
        "scheme `ftp` does not have a known default port",
    ),
    ("https://example.com:http", "is not a port number"),
    ("https://example.com:70000", "is not a port number"),
    ("https://example.com:90..80", "must go upwards"),
    ("https://example.com:1..x", "is not a port range"),
    ("https://", "the host is empty"),
    ("http://10.0.0.0/33:80", "is not a CIDR range"),
    ("http://::1:8080", "in brackets"),
    ("https://*example.com", "`*` is allowed only"),
    ("https://exa mple.com", "is not a host name"),
];

#[test]
fn valid_entries_allow_and_refuse_as_spin_does() {
    for (entry, allowed, refused) in VALID {
        let list =
            AllowedHosts::parse(&[*entry]).unwrap_or_else(|e| panic!("{entry} should parse: {e}"));
        for url in *allowed {
            assert!(list.allows_url(url), "{entry} should allow {url}");
        }
        for url in *refused {
            assert!(!list.allows_url(url), "{entry} should refuse {url}");
        }
    }
}

#[test]
fn invalid_entries_say_why() {
    for (entry, want) in INVALID {
        match AllowedHost::parse(entry) {
            Ok(parsed) => panic!("{entry:?} should not parse, got {parsed:?}"),
            Err(e) => {
                let shown = format!("{e} {}", e.help.clone().unwrap_or_default());
                assert!(
                    shown.contains(want),
                    "{entry:?}: want {want:?} in {shown:?}"
                );
            }
        }
    }
    assert!(VALID.len() + INVALID.len() >= 30);
}

#[test]
fn empty_template_results_are_dropped_and_nothing_allows_nothing() {
    let list = AllowedHosts::parse(&["", "http://", "https://"]).expect("optional endpoints");
    assert!(list.is_empty());
    assert!(!list.allows_url("https://example.com"));
    assert!(!AllowedHosts::default().allows_url("http://self/x"));
    assert!(
        !AllowedHosts::parse(&["*://*:*"])
            .expect("all")
            .allows_url("not a url")
    );
}
