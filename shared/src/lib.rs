//! Lockstep: a freeze-safe AWS AppConfig flag cache with a deployment-stamp consistency rule.
//!
//! The contract lives in `DESIGN.md` beside the project; this crate is its one implementation.
//! Reading order for a newcomer:
//!
//! - [`settings`]: P, ε and the fetch timeout, read from the environment once at init.
//! - [`catalog`]: the flags a function declares (default value, public or internal).
//! - [`overrides`]: `FORCE_<FLAG>` environment overrides.
//! - [`document`]: the two content formats (Freeform JSON, AppConfig feature flags) and their
//!   validation, done once per fetched version.
//! - [`consistency`]: the rule `consistentAt = T + Δ + P + ε`, in one function.
//! - [`snapshot`]: a validated configuration version with every flag resolved.
//! - [`source`], [`appconfig`], [`local`], [`memory`]: where content comes from.
//! - [`cache`]: refresh-on-access, single flight, last-known-good, degraded state.
//! - [`clock`]: time as a dependency, so tests and the fleet simulation run in virtual time.
#![warn(missing_docs)]

pub mod appconfig;
pub mod cache;
pub mod catalog;
pub mod clock;
pub mod config_endpoint;
pub mod consistency;
pub mod document;
pub mod durable;
pub mod dynamo;
pub mod dynamo_local;
pub mod feature_x;
pub mod http;
pub mod index_status;
pub mod local;
pub mod memory;
pub mod overrides;
pub mod product;
pub mod routes;
pub mod settings;
pub mod snapshot;
pub mod source;
pub mod stamp;
pub mod submissions;

pub use cache::{FlagCache, FlagView};
pub use catalog::{FlagCatalog, FlagDecl, Visibility};
pub use clock::{Clock, CoarseClock, ManualClock, SkewedClock, SystemClock};
pub use consistency::{evaluate, Consistency, Stamp, Window};
pub use overrides::Overrides;
pub use settings::Settings;
pub use snapshot::{FlagStatus, Snapshot};
pub use source::{ConfigSource, Content, Fetched, SourceError};
