//! Lockstep's flag evaluator (design rule 10): ordered rules and weighted splits over a caller's
//! context, as a pure function of (definition, context, now).
//!
//! A flag definition is written in AWS Lambda Powertools' feature-flag schema (`default`,
//! `boolean_type`, ordered `rules` of `when_match` and `conditions`, all 21 condition actions),
//! so a Powertools user's document works unchanged, plus one Lockstep extension: a rule may
//! `split` the users it matches into weighted variants, bucketed exactly as OpenFeature flagd's
//! `fractional` operator (v2) does, so any flagd-compatible tool computes the same cohorts.
//!
//! Reading order:
//! - [`definition`]: the schema, parsed and validated once per fetched version
//!   ([`Definition::parse`]); an invalid definition is a [`DefinitionError`] naming the flag and
//!   the rule.
//! - [`actions`]: the one table of condition actions, each a small function.
//! - [`compare`]: what "equal" and "greater" mean between JSON values (the choices where
//!   Powertools' Python behaviour is accidental).
//! - [`schedule`]: the time-based actions' operands (IANA time zones, wall-clock ranges).
//! - [`split`]: flagd's fractional bucketing.
//! - [`evaluate`](mod@evaluate): the evaluation itself, its [`Reason`] and variant.
//!
//! Nothing here reads a clock, the environment or the network: `now` is an argument, so every
//! instance evaluating the same definition and context at the same instant gets the same answer.
#![warn(missing_docs)]

pub mod actions;
pub mod compare;
pub mod definition;
pub mod evaluate;
pub mod schedule;
pub mod split;

pub use definition::{Definition, DefinitionError, Outcome, Rule};
pub use evaluate::{evaluate, Evaluation, Reason};

/// An evaluation context: the caller's targeting key (`targetingKey`, the verified user) and
/// attributes, one JSON object. Conditions read its keys; a split buckets by `targetingKey`.
pub type Context = serde_json::Map<String, serde_json::Value>;

/// The context key holding the targeting key (OpenFeature's name for it).
pub const TARGETING_KEY: &str = "targetingKey";
