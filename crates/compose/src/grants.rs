//! What a dependency or middleware may reach of its parent's grants.
//!
//! A component composed with dependencies is one component: left alone, a
//! dependency's `fermyon:spin/key-value` import would be the same host
//! instance as its parent's, with the parent's stores. Spin's rule is that
//! a dependency gets none of the parent's configuration unless the manifest
//! says so (`dependencies_inherit_configuration`, `inherit_configuration`).
//! Gyre keeps it by renaming each capability import of a dependency that
//! does not inherit that capability into the `gyre-denied` namespace before
//! composing ([`denied_name`]); the engine links those names to functions
//! that answer with the interface's own "denied" error (`access-denied`,
//! `HTTP-request-denied`, an empty environment …), never a trap.

/// One of the capability groups of Spin's `inherit_configuration` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// `ai_models`: the LLM interface.
    AiModels,
    /// `allowed_outbound_hosts`: outbound HTTP, databases, Redis, MQTT, sockets.
    AllowedOutboundHosts,
    /// `environment`: `wasi:cli/environment`.
    Environment,
    /// `files`: `wasi:filesystem/preopens`.
    Files,
    /// `key_value_stores`: every key-value interface.
    KeyValueStores,
    /// `sqlite_databases`: every SQLite interface.
    SqliteDatabases,
    /// `variables`: every variables and config interface.
    Variables,
}

impl Capability {
    /// Every capability, in the manifest's order.
    pub const ALL: [Capability; 7] = [
        Capability::AiModels,
        Capability::AllowedOutboundHosts,
        Capability::Environment,
        Capability::Files,
        Capability::KeyValueStores,
        Capability::SqliteDatabases,
        Capability::Variables,
    ];

    /// The name in `inherit_configuration = [...]`.
    pub fn manifest_name(self) -> &'static str {
        match self {
            Capability::AiModels => "ai_models",
            Capability::AllowedOutboundHosts => "allowed_outbound_hosts",
            Capability::Environment => "environment",
            Capability::Files => "files",
            Capability::KeyValueStores => "key_value_stores",
            Capability::SqliteDatabases => "sqlite_databases",
            Capability::Variables => "variables",
        }
    }

    /// The capability named `name` in `inherit_configuration`, if any
    /// (Spin ignores names it does not know).
    pub fn from_manifest_name(name: &str) -> Option<Capability> {
        Capability::ALL
            .into_iter()
            .find(|c| c.manifest_name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The interfaces each capability covers, by name without version. An
/// import of a denied capability is renamed; every other import (WASI I/O,
/// clocks, random, stdio, HTTP types …) is shared with the parent.
const INTERFACES: &[(&str, Capability)] = &[
    ("fermyon:spin/llm", Capability::AiModels),
    ("fermyon:spin/http", Capability::AllowedOutboundHosts),
    ("fermyon:spin/redis", Capability::AllowedOutboundHosts),
    ("fermyon:spin/postgres", Capability::AllowedOutboundHosts),
    ("fermyon:spin/mysql", Capability::AllowedOutboundHosts),
    ("fermyon:spin/mqtt", Capability::AllowedOutboundHosts),
    ("spin:redis/redis", Capability::AllowedOutboundHosts),
    ("spin:postgres/postgres", Capability::AllowedOutboundHosts),
    ("spin:mysql/mysql", Capability::AllowedOutboundHosts),
    ("spin:mqtt/mqtt", Capability::AllowedOutboundHosts),
    (
        "wasi:http/outgoing-handler",
        Capability::AllowedOutboundHosts,
    ),
    ("wasi:http/client", Capability::AllowedOutboundHosts),
    // WASI 0.2 sockets: the constructors and the resolver (the socket
    // resources themselves are useless without them).
    (
        "wasi:sockets/tcp-create-socket",
        Capability::AllowedOutboundHosts,
    ),
    (
        "wasi:sockets/udp-create-socket",
        Capability::AllowedOutboundHosts,
    ),
    (
        "wasi:sockets/ip-name-lookup",
        Capability::AllowedOutboundHosts,
    ),
    // WASI 0.3 sockets: the socket resources and their constructors.
    ("wasi:sockets/types", Capability::AllowedOutboundHosts),
    ("wasi:cli/environment", Capability::Environment),
    ("wasi:filesystem/preopens", Capability::Files),
    ("fermyon:spin/key-value", Capability::KeyValueStores),
    ("spin:key-value/key-value", Capability::KeyValueStores),
    ("wasi:keyvalue/store", Capability::KeyValueStores),
    ("wasi:keyvalue/atomics", Capability::KeyValueStores),
    ("wasi:keyvalue/batch", Capability::KeyValueStores),
    ("fermyon:spin/sqlite", Capability::SqliteDatabases),
    ("spin:sqlite/sqlite", Capability::SqliteDatabases),
    ("fermyon:spin/config", Capability::Variables),
    ("fermyon:spin/variables", Capability::Variables),
    ("spin:variables/variables", Capability::Variables),
    ("wasi:config/store", Capability::Variables),
];

/// The namespace denied imports are renamed into.
pub const DENIED_NAMESPACE: &str = "gyre-denied";

/// The capability an import name belongs to, if it is a capability.
pub fn capability_of(import: &str) -> Option<Capability> {
    let base = import.split('@').next().unwrap_or(import);
    INTERFACES
        .iter()
        .find(|(name, _)| *name == base)
        .map(|(_, c)| *c)
}

/// `fermyon:spin/key-value@2.0.0` → `gyre-denied:fermyon-spin/key-value@2.0.0`.
pub fn denied_name(import: &str) -> String {
    format!("{DENIED_NAMESPACE}:{}", import.replacen(':', "-", 1))
}

/// The import a [`denied_name`] stands for, and its capability.
pub fn undenied(name: &str) -> Option<(String, Capability)> {
    let rest = name.strip_prefix(DENIED_NAMESPACE)?.strip_prefix(':')?;
    let (base, version) = match rest.split_once('@') {
        Some((base, version)) => (base, Some(version)),
        None => (rest, None),
    };
    let (original, capability) = INTERFACES
        .iter()
        .find(|(original, _)| original.replacen(':', "-", 1) == base)?;
    let original = match version {
        Some(version) => format!("{original}@{version}"),
        None => original.to_string(),
    };
    Some((original, *capability))
}

/// Which capabilities a dependency or middleware inherits from its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Inherit(u8);

impl Inherit {
    /// Nothing: Spin's default.
    pub const NONE: Inherit = Inherit(0);

    /// Everything the parent was granted (`inherit_configuration = true`).
    pub fn all() -> Inherit {
        Inherit::from_iter(Capability::ALL)
    }

    /// Whether `capability` is inherited.
    pub fn includes(self, capability: Capability) -> bool {
        self.0 & capability.bit() != 0
    }

    /// The inherited capabilities' manifest names, for messages and keys.
    pub fn names(self) -> Vec<&'static str> {
        Capability::ALL
            .into_iter()
            .filter(|c| self.includes(*c))
            .map(Capability::manifest_name)
            .collect()
    }

    /// Whether an import of `name` is renamed away from the parent's.
    pub fn denies(self, name: &str) -> bool {
        capability_of(name).is_some_and(|c| !self.includes(c))
    }

    pub(crate) fn bits(self) -> u8 {
        self.0
    }
}

impl FromIterator<Capability> for Inherit {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        Inherit(iter.into_iter().fold(0, |bits, c| bits | c.bit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_names_round_trip() {
        let cases = [
            ("fermyon:spin/key-value@2.0.0", Capability::KeyValueStores),
            ("fermyon:spin/config", Capability::Variables),
            (
                "wasi:keyvalue/store@0.2.0-draft2",
                Capability::KeyValueStores,
            ),
            ("wasi:http/client@0.3.0", Capability::AllowedOutboundHosts),
            ("spin:variables/variables@3.0.0", Capability::Variables),
        ];
        for (name, capability) in cases {
            assert_eq!(capability_of(name), Some(capability), "{name}");
            let denied = denied_name(name);
            assert!(denied.starts_with("gyre-denied:"), "{denied}");
            assert_eq!(undenied(&denied), Some((name.to_string(), capability)));
        }
    }

    #[test]
    fn what_is_not_a_capability_is_shared() {
        for name in [
            "wasi:http/types@0.2.6",
            "wasi:io/streams@0.2.0",
            "wasi:cli/stdout@0.3.0",
            "wasi:sockets/network@0.2.0",
            "fermyon:spin/rdbms-types@2.0.0",
            "gyre:compose-test/greeting@0.1.0",
        ] {
            assert_eq!(capability_of(name), None, "{name}");
            assert!(!Inherit::NONE.denies(name));
        }
    }

    #[test]
    fn inheriting_a_capability_keeps_its_interfaces() {
        let inherit: Inherit = [Capability::Variables].into_iter().collect();
        assert!(!inherit.denies("fermyon:spin/variables@2.0.0"));
        assert!(inherit.denies("fermyon:spin/key-value@2.0.0"));
        assert!(!Inherit::all().denies("wasi:cli/environment@0.2.0"));
        for denied in [
            "wasi:sockets/ip-name-lookup@0.3.0",
            "wasi:sockets/ip-name-lookup@0.2.9",
            "wasi:http/client@0.3.0",
            "wasi:http/outgoing-handler@0.2.6",
            "wasi:filesystem/preopens@0.2.0",
        ] {
            assert!(Inherit::NONE.denies(denied), "{denied}");
            let outbound: Inherit = [Capability::AllowedOutboundHosts].into_iter().collect();
            assert_eq!(
                outbound.denies(denied),
                denied.contains("preopens"),
                "{denied}"
            );
        }
        assert_eq!(inherit.names(), ["variables"]);
        assert_eq!(
            Capability::from_manifest_name("key_value_stores"),
            Some(Capability::KeyValueStores)
        );
        assert_eq!(Capability::from_manifest_name("gpus"), None);
    }
}
