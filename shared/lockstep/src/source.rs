//! Where content comes from: the [`ConfigSource`] port the cache drives.
//!
//! A source is called only by the cache's single-flight refresh, with `&mut self`, so it can keep
//! protocol state (AppConfigData's session token) without locks of its own.

use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use thiserror::Error;

/// A boxed error kept as the source of a [`SourceError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A boxed future, so sources can be chosen at run time (`Box<dyn ConfigSource>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Content a source delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The raw bytes, parsed by the cache once.
    pub bytes: Vec<u8>,
    /// The version label, for logs and `/config` (AppConfig's `VersionLabel` or a content hash).
    pub version: String,
}

/// The answer of one successful fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// New content, or `None` when it is unchanged since the last content this source delivered.
    pub content: Option<Content>,
    /// The service's own minimum interval before the next call, when it states one.
    pub next_poll_interval: Option<Duration>,
}

/// Why a fetch failed. Every variant keeps last-known-good and marks the instance degraded.
#[derive(Debug, Error)]
pub enum SourceError {
    /// The service answered that its poll interval has not passed (`PollIntervalNotSatisfied`).
    #[error("AppConfig answered that the poll interval has not passed")]
    TooEarly(#[source] BoxError),
    /// The service throttled the call.
    #[error("AppConfig throttled the call")]
    Throttled(#[source] BoxError),
    /// The service or the network failed (5xx, connection, dispatch, response).
    #[error("AppConfig is unavailable")]
    Unavailable(#[source] BoxError),
    /// The service refused the request (unknown application, environment or profile, access
    /// denied, bad parameters): a deployment or permission problem, not a passing one.
    #[error("AppConfig refused the request")]
    Refused(#[source] BoxError),
    /// A local file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl SourceError {
    /// The kind of failure, for the degraded state, logs and metrics.
    pub fn kind(&self) -> FailureKind {
        match self {
            SourceError::TooEarly(_) => FailureKind::TooEarly,
            SourceError::Throttled(_) => FailureKind::Throttled,
            SourceError::Unavailable(_) => FailureKind::Unavailable,
            SourceError::Refused(_) => FailureKind::Refused,
            SourceError::Io { .. } => FailureKind::Io,
        }
    }
}

/// Why an instance has no configuration of its own, or why its last refresh failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The service answered that its poll interval has not passed.
    TooEarly,
    /// The service throttled the call.
    Throttled,
    /// The service or the network failed.
    Unavailable,
    /// The service refused the request.
    Refused,
    /// A local file could not be read.
    Io,
    /// The refresh did not finish within its timeout.
    Timeout,
    /// No fetch has finished yet (the prefetch is running).
    NotYet,
    /// The source answered, but has never delivered content (a first answer of "unchanged").
    NoContent,
}

impl FailureKind {
    /// A short, stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::TooEarly => "too_early",
            FailureKind::Throttled => "throttled",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Refused => "refused",
            FailureKind::Io => "io",
            FailureKind::Timeout => "timeout",
            FailureKind::NotYet => "not_yet",
            FailureKind::NoContent => "no_content",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A source of configuration content.
pub trait ConfigSource: Send + 'static {
    /// Fetches the latest content. `now` is the cache's clock, for protocol timing.
    fn fetch(&mut self, now: DateTime<Utc>) -> BoxFuture<'_, Result<Fetched, SourceError>>;

    /// A short description for logs (never secrets).
    fn describe(&self) -> String;
}

/// FNV-1a, 64 bits: a stable, dependency-free content hash for version labels and request
/// fingerprints (not for security).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
