//! Component composition, on `wac-graph` (the composition crate of the
//! component model, the one Spin uses).
//!
//! Composition happens before compilation, so its result is cached with the
//! compiled code: a warm start never composes again.
//!
//! - [`wasi_rc`]: components built against `wasi:*@0.3.0-rc-2026-03-15`
//!   (what Spin's current SDKs emit) are wrapped so that every release
//!   candidate import is satisfied by the final `@0.3.0` interface, which
//!   Wasmtime implements, and their handler is exported under its final
//!   name.
//! - [`dependencies`]: `[component.X.dependencies]` plugged into the
//!   imports they name, and HTTP middleware wrapped around the handler,
//!   with [`grants`] deciding what of the parent each may reach.

pub mod dependencies;
pub mod grants;
pub mod wasi_rc;

pub use dependencies::{ComposeError, Composition, HANDLER, Piece, Plug, compose};
pub use grants::{Capability, Inherit};
pub use wasi_rc::{WASI_RC, adapt_wasi_rc};
