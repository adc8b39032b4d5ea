//! gyre-trigger-http
