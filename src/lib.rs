//! Arca: turn a Rust crate into a runnable container image.
//!
//! One engine, two faces: the `arca` command line ([`cli`]) and the language
//! server ([`server`]). Data flows one way; see ARCHITECTURE.md for the code
//! map and the invariants each module keeps.

pub mod blobs;
pub mod build_log;
pub mod builder_image;
pub mod cargo_run;
pub mod cli;
pub mod config;
pub mod engine;
pub mod fingerprint;
pub mod fsread;
pub mod image;
pub mod manifest;
pub mod paths;
pub mod pipeline;
pub mod plan;
pub mod platform;
pub mod registry;
pub mod runner;
pub mod sbom;
pub mod server;
pub mod status;
pub mod store;
pub mod units;
pub mod watch;
pub mod workspace;
