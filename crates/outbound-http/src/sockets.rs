//! `wasi:sockets` (0.2 and 0.3) under the component's
//! `allowed_outbound_hosts`, as Spin: a TCP connect must be allowed with
//! scheme `tcp`, a UDP datagram (sent or received) with scheme `udp`; CIDR
//! and templated entries work as for any other scheme. Nothing may listen:
//! an explicit bind, `listen` and `accept` are denied — only the implicit
//! bind to a wildcard address and port 0 that every connect makes passes.
//! `[outbound_networking] block_networks` is checked after the allow-list,
//! on the address itself. A denial is the interface's `access-denied`. A
//! component that lists no `tcp`, `udp` or `*` entry gets no sockets at all
//! (Wasmtime's default).

use std::net::SocketAddr;
use std::sync::Arc;

use gyre_outbound_networking::{AllowedHosts, BlockedNetworks, Destination, Host, SchemePattern};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

/// One component's socket rules, built once at load and shared by every
/// instance's WASI context.
pub(crate) struct SocketRules {
    component: String,
    allowed: Arc<AllowedHosts>,
    blocked: Arc<BlockedNetworks>,
}

impl SocketRules {
    /// The rules for a component, or `None` when no entry of `allowed` can
    /// let a socket through: such an instance gets no sockets at all and
    /// nothing is checked per store.
    pub(crate) fn for_component(
        component: &str,
        allowed: &Arc<AllowedHosts>,
        blocked: &Arc<BlockedNetworks>,
    ) -> Option<Arc<SocketRules>> {
        may_allow_sockets(allowed).then(|| {
            Arc::new(SocketRules {
                component: component.to_string(),
                allowed: allowed.clone(),
                blocked: blocked.clone(),
            })
        })
    }

    /// Gives an instance's WASI context TCP, UDP and name lookup, each
    /// address checked against these rules.
    pub(crate) fn install(self: &Arc<Self>, wasi: &mut WasiCtxBuilder) {
        let rules = self.clone();
        wasi.allow_tcp(true)
            .allow_udp(true)
            .allow_ip_name_lookup(true)
            .socket_addr_check(move |addr, use_| {
                let verdict = check(&rules.allowed, &rules.blocked, addr, use_);
                let component = &rules.component;
                match verdict {
                    Err(Denial::NotAllowed(scheme)) => tracing::warn!(
                        "component `{component}`: Outbound network destination not allowed: {scheme}://{addr}"
                    ),
                    Err(Denial::Blocked) => tracing::warn!(
                        "component `{component}`: connection to {addr} refused: the address is in `block_networks`"
                    ),
                    Err(Denial::Local) | Ok(()) => {}
                }
                Box::pin(std::future::ready(verdict.is_ok()))
            });
    }
}

/// Why a socket use is refused.
#[derive(Debug, PartialEq, Eq)]
enum Denial {
    /// No `allowed_outbound_hosts` entry allows the remote address.
    NotAllowed(&'static str),
    /// The remote address is in `block_networks`.
    Blocked,
    /// A bind to a chosen address, `listen` or `accept`: a server.
    Local,
}

/// Whether any entry of `allowed` can let a socket through.
fn may_allow_sockets(allowed: &AllowedHosts) -> bool {
    allowed.entries().iter().any(|entry| match &entry.scheme {
        SchemePattern::Any => true,
        SchemePattern::Is(scheme) => scheme == "tcp" || scheme == "udp",
    })
}

/// Whether a socket may use `addr` for `use_`.
fn check(
    allowed: &AllowedHosts,
    blocked: &BlockedNetworks,
    addr: SocketAddr,
    use_: SocketAddrUse,
) -> Result<(), Denial> {
    let scheme = match use_ {
        SocketAddrUse::TcpConnect => "tcp",
        SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => "udp",
        // The implicit bind of a connect or a first send: a wildcard
        // address, an ephemeral port. Anything else would be a server.
        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind
            if addr.ip().is_unspecified() && addr.port() == 0 =>
        {
            return Ok(());
        }
        _ => return Err(Denial::Local),
    };
    let destination = Destination {
        scheme,
        // An IPv4-mapped IPv6 address is checked as the IPv4 it is.
        host: Host::Ip(addr.ip().to_canonical()),
        port: Some(addr.port()),
    };
    if !allowed.allows(&destination) {
        return Err(Denial::NotAllowed(scheme));
    }
    if blocked.blocks(addr.ip()) {
        return Err(Denial::Blocked);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_uses_against_allow_lists() {
        use SocketAddrUse::*;
        let allowed = AllowedHosts::parse(&[
            "tcp://127.0.0.1:7000",
            "udp://10.0.0.0/8:53",
            "*://192.168.1.0/24:9000..9010",
        ])
        .expect("entries");
        let addr = |s: &str| s.parse::<SocketAddr>().expect("addr");
        // (address, use, allowed?)
        let cases = [
            ("127.0.0.1:7000", TcpConnect, true),
            ("127.0.0.1:7001", TcpConnect, false),
            ("127.0.0.2:7000", TcpConnect, false),
            ("127.0.0.1:7000", UdpSend, false),
            ("[::ffff:127.0.0.1]:7000", TcpConnect, true),
            ("10.1.2.3:53", UdpSend, true),
            ("10.1.2.3:53", UdpReceive, true),
            ("10.1.2.3:53", TcpConnect, false),
            ("11.0.0.1:53", UdpSend, false),
            ("192.168.1.77:9005", TcpConnect, true),
            ("192.168.1.77:9005", UdpSend, true),
            ("192.168.2.77:9005", TcpConnect, false),
            ("192.168.1.77:9010", TcpConnect, false),
            ("0.0.0.0:0", TcpBind, true),
            ("[::]:0", UdpBind, true),
            ("0.0.0.0:7000", TcpBind, false),
            ("127.0.0.1:0", TcpBind, false),
            ("0.0.0.0:0", TcpListen, false),
            ("127.0.0.1:7000", TcpAccept, false),
        ];
        let none = BlockedNetworks::default();
        assert!(may_allow_sockets(&allowed));
        let http_only = AllowedHosts::parse(&["https://example.com"]).expect("entry");
        assert!(!may_allow_sockets(&http_only));
        for (a, use_, want) in cases {
            assert_eq!(
                check(&allowed, &none, addr(a), use_).is_ok(),
                want,
                "{a} {use_:?}"
            );
        }
        let blocked = BlockedNetworks::parse(&["127.0.0.1"]).expect("entry");
        assert_eq!(
            check(
                &allowed,
                &blocked,
                addr("[::ffff:127.0.0.1]:7000"),
                TcpConnect
            ),
            Err(Denial::Blocked),
            "block_networks wins over the allow-list"
        );
        assert_eq!(
            check(&allowed, &blocked, addr("10.1.2.3:54"), UdpSend),
            Err(Denial::NotAllowed("udp"))
        );
        assert_eq!(
            check(&allowed, &blocked, addr("0.0.0.0:0"), TcpListen),
            Err(Denial::Local)
        );
    }
}
