//! Why content cannot be stamped: the one error type of [`super`], its reader and its writer.

use crate::catalog::BadFlagName;
use crate::document::ContentError;
use thiserror::Error;

/// Why content cannot be stamped (the extension blocks the deployment with this message, and
/// its sources: see [`crate::error_chain`]).
#[derive(Debug, Error)]
pub enum StampError {
    /// Not JSON.
    #[error("the configuration is not JSON")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but not an object.
    #[error("the configuration must be a JSON object")]
    NotObject,
    /// A flag key AppConfig would refuse.
    #[error(transparent)]
    BadFlagName(#[from] BadFlagName),
    /// Stored feature-flag content that AppConfig would refuse or Lockstep cannot read.
    #[error("invalid feature-flag document: {0}")]
    FeatureFlags(String),
    /// Content that does not validate (before or after stamping).
    #[error("invalid configuration")]
    Invalid(#[source] ContentError),
    /// The previously deployed content cannot be read.
    #[error("the previously deployed content cannot be read")]
    Previous(#[source] Box<StampError>),
    /// A deployment duration over AppConfig's 24 hours.
    #[error("the deployment duration must be at most 24 hours")]
    Duration,
    /// A drain time over 24 hours.
    #[error("the drain time must be at most 24 hours")]
    Drain,
    /// A drain time for a deployment that switches no flag off and changes no rules.
    #[error(
        "a drain time was given, but this deployment switches no flag from on to off and \
         changes no flag's rules"
    )]
    DrainWithoutSwitchOff,
    /// The operating system's random source failed while making a journey key.
    #[error("cannot make a journey key: {0}")]
    KeyGeneration(String),
    /// The deployed content could not be read and the new content carries no journey keys: a
    /// new key would refuse every token and cursor in flight, so nothing is stamped.
    #[error("the deployed content could not be read and this content carries no journeyKeys, so the deployed keys cannot be kept (a new key would refuse every journey token and cursor in flight); retry once the deployed content can be read, or deploy content that carries its keys (stamped by `lockstep deploy` or `lockstep-stamp`)")]
    KeysUnknown,
}
