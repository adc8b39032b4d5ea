//! gyre-app
