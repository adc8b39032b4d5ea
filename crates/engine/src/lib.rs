//! gyre-engine
