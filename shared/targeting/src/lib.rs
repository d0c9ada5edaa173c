#![doc = include_str!("../README.md")]
//!
//! Reading order: [`definition`] (the schema, parsed and validated once per fetched version;
//! an invalid definition is a [`DefinitionError`] naming the flag and the rule), [`actions`] (the
//! one table of condition actions, each a small function), [`compare`] (what "equal" and
//! "greater" mean between JSON values), [`schedule`] (the time-based actions' operands),
//! [`split`] (flagd's fractional bucketing), [`ramp`] (a split growing with time),
//! [`changes`] (when a caller's answer next changes without a deployment), [`evaluate`](mod@evaluate) (the evaluation, its
//! [`Reason`] and variant).
#![warn(missing_docs)]

pub mod actions;
pub mod changes;
pub mod compare;
pub mod definition;
pub mod evaluate;
pub mod ramp;
pub mod schedule;
pub mod split;

pub use definition::{Definition, DefinitionError, Outcome, Rule};
pub use evaluate::{evaluate, Evaluation, Reason};

/// An evaluation context: the caller's targeting key (`targetingKey`, the verified user) and
/// attributes, one JSON object. Conditions read its keys; a split buckets by `targetingKey`.
pub type Context = serde_json::Map<String, serde_json::Value>;

/// The context key holding the targeting key (OpenFeature's name for it).
pub const TARGETING_KEY: &str = "targetingKey";
