//! Shared by the extension's integration tests: the workspace's test kit (`testkit/`).
#![allow(unused_imports)]
pub use health_rls_testkit::*;
