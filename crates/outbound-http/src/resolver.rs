//! Name resolution for outbound HTTP under `[outbound_networking]
//! block_networks`: a name's addresses in a blocked network are dropped
//! before any connection is tried, and a name left with none fails as
//! `destination-IP-prohibited` — so `allowed_outbound_hosts = ["https://*"]`
//! cannot reach an internal service through a public name that resolves to
//! it. IP-literal URLs never reach a resolver; `Hooks::send_request` checks
//! those.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use gyre_outbound_networking::BlockedNetworks;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};

/// The system resolver, minus `block_networks`.
#[derive(Clone)]
pub(crate) struct FilteringResolver {
    system: GaiResolver,
    blocked: Arc<BlockedNetworks>,
}

impl FilteringResolver {
    pub(crate) fn new(blocked: Arc<BlockedNetworks>) -> Self {
        FilteringResolver {
            system: GaiResolver::new(),
            blocked,
        }
    }
}

/// Every address a name resolved to is in `block_networks`.
#[derive(Debug, thiserror::Error)]
#[error("every address of `{0}` is in a network blocked by `[outbound_networking] block_networks`")]
pub(crate) struct Prohibited(String);

type Lookup = Pin<Box<dyn Future<Output = io::Result<std::vec::IntoIter<SocketAddr>>> + Send>>;

impl tower_service::Service<Name> for FilteringResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Lookup;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Lookup {
        let host = name.as_str().to_string();
        let lookup = self.system.call(name);
        let blocked = self.blocked.clone();
        Box::pin(async move {
            let mut addrs: Vec<SocketAddr> = lookup.await?.collect();
            let found = !addrs.is_empty();
            addrs.retain(|addr| !blocked.blocks(addr.ip()));
            if found && addrs.is_empty() {
                tracing::warn!(
                    "outbound HTTP to `{host}` refused: its addresses are all in `block_networks`"
                );
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    Prohibited(host),
                ));
            }
            Ok(addrs.into_iter())
        })
    }
}

/// Whether a client error is a [`Prohibited`] lookup somewhere down its chain.
pub(crate) fn is_prohibited(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<Prohibited>() {
            return true;
        }
        if let Some(inner) = error
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            && inner.is::<Prohibited>()
        {
            return true;
        }
        next = error.source();
    }
    false
}
