//! Lockstep's command-line tools for pipelines, as a library the local runner shares:
//!
//! - [`deploy`]: a stamped AppConfig deployment through the control plane, with Δ from the
//!   deployment strategy itself (`lockstep deploy`).
//! - [`eval`]: a definition checked (`lockstep validate`) and evaluated for one caller
//!   (`lockstep eval`) before anything is deployed.
//!
//! The stamping command (`lockstep-stamp`) is a thin binary over `lockstep::stamp`.
#![warn(missing_docs)]

pub mod deploy;
pub mod eval;
