//! Why a deployment was refused or failed, and the mapping of AppConfig SDK errors into it.

use super::rollback::Rollback;
use aws_sdk_appconfig::error::{ProvideErrorMetadata, SdkError};
use lockstep::stamp::StampError;
use thiserror::Error;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a deployment was refused or failed.
#[derive(Debug, Error)]
pub enum DeployError {
    /// The application, environment, profile or strategy does not exist.
    #[error("no {kind} named {name:?}")]
    NotFound {
        /// What was looked for.
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// AppConfig runs one deployment per environment at a time.
    #[error("deployment {number} is already in progress in environment {environment:?}; wait for it or stop it")]
    InProgress {
        /// The deployment in progress.
        number: i32,
        /// The environment.
        environment: String,
    },
    /// A flag the catalog does not declare.
    #[error("unknown flag {name:?}; declared flags: {declared}")]
    UndeclaredFlag {
        /// The name given.
        name: String,
        /// The declared names.
        declared: String,
    },
    /// Nothing to set.
    #[error("name at least one flag to set, or a content file")]
    NothingToDeploy,
    /// A strategy longer than AppConfig allows.
    #[error("the strategy lasts {0} minutes, over AppConfig's 24 hours")]
    StrategyTooLong(i32),
    /// The content deployed now is not a JSON object `--set` or `--split` can edit.
    #[error(
        "the deployed content cannot be edited with --set or --split (use a content file): {0}"
    )]
    NotEditable(String),
    /// The new content cannot be stamped.
    #[error("the content cannot be stamped")]
    Stamp(#[from] StampError),
    /// The deployment was rolled back (by an alarm, or stopped), and who did it, from its
    /// event log.
    #[error("deployment {number} was rolled back {}: the previous content is live again", rollback.rolled_back_by)]
    RolledBack {
        /// The deployment.
        number: i32,
        /// Who rolled it back, as its event log says.
        rollback: Box<Rollback>,
    },
    /// AppConfig refused or failed a call.
    #[error("AppConfig {operation} failed ({code})")]
    AppConfig {
        /// The operation.
        operation: &'static str,
        /// The error code, or `unreachable`.
        code: String,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
}

impl DeployError {
    /// True when the deployment was refused before anything was created (exit 2), false when
    /// AppConfig failed or the deployment was rolled back (exit 1, whoever rolled it back).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            DeployError::NotFound { .. }
                | DeployError::InProgress { .. }
                | DeployError::UndeclaredFlag { .. }
                | DeployError::NothingToDeploy
                | DeployError::StrategyTooLong(_)
                | DeployError::NotEditable(_)
                | DeployError::Stamp(_)
        )
    }
}

/// The [`DeployError::AppConfig`] of a failed call to `operation`.
pub(super) fn sdk<E>(operation: &'static str) -> impl FnOnce(SdkError<E>) -> DeployError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |error| DeployError::AppConfig {
        operation,
        code: error.code().unwrap_or("unreachable").to_owned(),
        source: Box::new(error),
    }
}
