//! Lockstep: a freeze-safe AWS AppConfig flag cache for Lambda, with a deployment-stamp
//! consistency rule.
//!
//! The contract lives in `DESIGN.md` beside the project; this crate is its one implementation.
//! It has no HTTP or Lambda dependency (that is `lockstep-http`) and no DynamoDB dependency
//! unless the `dynamodb` feature asks for the durable snapshot adapter. Reading order:
//!
//! - [`settings`]: P, ε and the fetch timeout, read from the environment once at init.
//! - [`catalog`]: the flags a function declares (default value, public or internal) and the
//!   [`FlagHandle`]s a read takes.
//! - [`overrides`]: `FORCE_<FLAG>` environment overrides.
//! - [`document`]: the two content formats (Freeform JSON, AppConfig feature flags) and their
//!   validation, done once per fetched version.
//! - [`consistency`]: the rule `consistentAt = T + Δ + P + ε`, per flag and for the backend.
//! - [`snapshot`]: a validated configuration version with every flag resolved.
//! - [`rollback`]: a fetch that brings a flag back to an older stamp, and the bound it moves
//!   (rule 7).
//! - [`source`], [`appconfig`], [`local`]: where content comes from; [`target`]: which
//!   application, environment and profile.
//! - [`cache`]: refresh-on-access, single flight, last-known-good, degraded state, the read
//!   model ([`FlagView`]), and over it as pure functions the journey token's policy
//!   ([`token_policy`], rule 8) and the gate's decision with catch-up and drain ([`decision`],
//!   asked through [`FlagCache::decide`]).
//! - [`journey`]: journey tokens (rules 8 and 9).
//! - [`metrics`]: what an instance counts, and the one EMF document per invocation (rule 11).
//! - [`rfc3339`]: timestamps in serialised bodies, as chrono writes them, without its `fmt` path.
//! - [`durable`]: the durable last-known-good snapshot (port; DynamoDB adapter behind `dynamodb`).
//! - [`stamp`]: deploy-time stamping, behind the AppConfig extension and the pipeline command.
//! - [`init`]: the cache from the environment, as a function builds it at init.
//! - [`clock`]: time as a dependency, so tests and the fleet simulation run in virtual time.
//!
//! With the `test-util` feature: `memory` (an in-memory source) and the manual and skewed clocks.
#![warn(missing_docs)]

pub mod appconfig;
pub mod cache;
pub mod catalog;
pub mod clock;
pub mod consistency;
pub mod document;
pub mod durable;
pub mod flag_stamp;
pub mod history;
pub mod init;
pub mod journey;
pub mod journey_key;
pub mod json_text;
pub mod local;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;
pub mod metrics;
pub mod overrides;
pub mod resolved;
pub mod rfc3339;
pub mod rollback;
pub mod settings;
pub mod snapshot;
pub mod source;
pub mod stamp;
pub mod target;
pub mod targeted;

pub use cache::{decision, token_policy, FlagCache, FlagView, PollCounts};
pub use catalog::{FlagCatalog, FlagDecl, FlagHandle, Visibility};
pub use clock::{Clock, CoarseClock, SystemClock};
#[cfg(any(test, feature = "test-util"))]
pub use clock::{ManualClock, SkewedClock};
pub use consistency::{Backend, Consistency, FlagStatus, Stamp, Window, CATCH_UP_INTERVAL};
pub use decision::{CatchUp, ClosedReason, Decision, Verdict};
pub use overrides::Overrides;
pub use settings::Settings;
pub use snapshot::Snapshot;
pub use source::{ConfigSource, Content, Fetched, SourceError};

/// An error and its sources, outermost first, joined by `: ` (for messages that must carry the
/// whole chain, such as the stamping extension's answer to AppConfig).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
