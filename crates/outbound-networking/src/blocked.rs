//! `[outbound_networking] block_networks`: addresses no component may reach,
//! whatever its `allowed_outbound_hosts` says — the operator's word over the
//! app author's. Entries are IP addresses, CIDR ranges, or `private` (every
//! address that is not globally routable). The check runs on the address
//! actually connected to, after name resolution, so a name that resolves
//! into a blocked range is blocked too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Parsed `block_networks`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockedNetworks {
    networks: Vec<IpNet>,
    private: bool,
}

impl BlockedNetworks {
    /// Parses the entries; the error names the first bad one and why.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut blocked = BlockedNetworks::default();
        for entry in entries {
            blocked.add(entry.as_ref())?;
        }
        Ok(blocked)
    }

    /// Adds one entry, or says why it is not one.
    pub fn add(&mut self, entry: &str) -> Result<(), String> {
        let entry = entry.trim();
        if entry == "private" {
            self.private = true;
        } else if let Ok(net) = entry.parse::<IpNet>() {
            self.networks.push(net);
        } else if let Ok(ip) = entry.parse::<IpAddr>() {
            self.networks.push(IpNet::from(ip));
        } else {
            return Err(format!(
                "{entry:?} is not an IP address, a CIDR range (`10.0.0.0/8`) or `private`"
            ));
        }
        Ok(())
    }

    /// Whether nothing is blocked.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() && !self.private
    }

    /// Whether `ip` is blocked. An IPv4-mapped IPv6 address is checked as
    /// the IPv4 address it carries.
    pub fn blocks(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        (self.private && !is_global(ip)) || self.networks.iter().any(|net| net.contains(&ip))
    }
}

/// Whether `ip` is globally routable (the IANA special-purpose registries;
/// what the unstable `IpAddr::is_global` computes).
fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        // 0.0.0.0/8 "this network"
        || a == 0
        // 100.64.0.0/10 shared address space (carrier-grade NAT)
        || (a == 100 && (b & 0b1100_0000) == 64)
        // 192.0.0.0/24 protocol assignments (but .9 and .10 are global)
        || (a == 192 && b == 0 && c == 0 && !matches!(ip.octets()[3], 9 | 10))
        // 198.18.0.0/15 benchmarking
        || (a == 198 && (b & 0xfe) == 18)
        // 240.0.0.0/4 reserved
        || a >= 240)
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        // ::ffff:0:0/96 IPv4-mapped (checked as IPv4 by the caller)
        || matches!(segments, [0, 0, 0, 0, 0, 0xffff, _, _])
        // 64:ff9b:1::/48 local-use IPv4/IPv6 translation
        || matches!(segments, [0x64, 0xff9b, 1, _, _, _, _, _])
        // 100::/64 discard-only
        || matches!(segments, [0x100, 0, 0, 0, _, _, _, _])
        // 2001::/23 IETF protocol assignments, but for the global ones
        || (segments[0] == 0x2001 && segments[1] < 0x200 && !is_global_ietf_v6(segments))
        // 2001:db8::/32 documentation
        || (segments[0] == 0x2001 && segments[1] == 0xdb8)
        // fc00::/7 unique local
        || (segments[0] & 0xfe00) == 0xfc00
        // fe80::/10 link-local
        || (segments[0] & 0xffc0) == 0xfe80)
}

/// The globally reachable blocks inside 2001::/23.
fn is_global_ietf_v6(segments: [u16; 8]) -> bool {
    let ip = Ipv6Addr::from(segments);
    // 2001:1::1 and 2001:1::2, PCP and TURN anycast
    let anycast = ip == Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 1)
        || ip == Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 2);
    anycast
        // 2001:3::/32 AMT
        || (segments[1] == 3)
        // 2001:4:112::/48 AS112-v6
        || (segments[1] == 4 && segments[2] == 0x112)
        // 2001:20::/28 ORCHIDv2
        || (0x20..=0x2f).contains(&segments[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_addresses() {
        let blocked =
            BlockedNetworks::parse(&["1.1.1.1/32", "10.0.0.0/8", "2001:4860::/32", "8.8.4.4"])
                .expect("entries");
        let private = BlockedNetworks::parse(&["private"]).expect("private");
        // (address, blocked by the list?, blocked by `private`?)
        let cases = [
            ("1.1.1.1", true, false),
            ("1.1.1.2", false, false),
            ("8.8.4.4", true, false),
            ("10.200.0.1", true, true),
            ("::ffff:10.0.0.1", true, true),
            ("2001:4860::8888", true, false),
            ("127.0.0.1", false, true),
            ("::1", false, true),
            ("192.168.1.1", false, true),
            ("172.20.0.1", false, true),
            ("169.254.169.254", false, true),
            ("100.64.0.1", false, true),
            ("0.0.0.0", false, true),
            ("fd00::1", false, true),
            ("fe80::1", false, true),
            ("2001:db8::1", false, true),
            ("93.184.216.34", false, false),
            ("2606:4700::1111", false, false),
        ];
        for (ip, by_list, by_private) in cases {
            let ip: IpAddr = ip.parse().expect("address");
            assert_eq!(blocked.blocks(ip), by_list, "{ip} by the list");
            assert_eq!(private.blocks(ip), by_private, "{ip} by `private`");
        }
        assert!(
            BlockedNetworks::parse::<&str>(&[])
                .expect("empty")
                .is_empty()
        );
        assert!(!private.is_empty());
    }

    #[test]
    fn a_bad_entry_is_named() {
        let error = BlockedNetworks::parse(&["10.0.0.0/8", "intranet"]).expect_err("bad entry");
        assert!(error.contains("\"intranet\""), "{error}");
        assert!(BlockedNetworks::parse(&["10.0.0.0/33"]).is_err());
    }
}
