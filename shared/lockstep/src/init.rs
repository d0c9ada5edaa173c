//! Start-up wiring from the environment: the one way a function builds its flag cache at init.
//!
//! | variable | meaning |
//! | --- | --- |
//! | `LOCKSTEP_APPCONFIG_APPLICATION`, `_ENVIRONMENT`, `_PROFILE` | the AppConfig target (names or ids) |
//! | `LOCKSTEP_LOCAL_DIR` | read flags from this directory instead (AppConfig Agent local development naming) |
//! | `LOCKSTEP_SNAPSHOT_TABLE` | the durable last-known-good snapshot's DynamoDB table (cargo feature `dynamodb`) |
//!
//! plus the [`crate::settings`] variables and the `FORCE_<FLAG>` overrides.

use crate::appconfig::{self, AppConfigSource};
use crate::cache::{CacheOptions, FlagCache};
use crate::catalog::{CatalogError, FlagCatalog};
use crate::clock::CoarseClock;
use crate::durable::SNAPSHOT_TABLE_VAR;
use crate::local::LocalDirSource;
use crate::overrides::{OverrideError, Overrides};
use crate::settings::{Settings, SettingsError};
use crate::source::ConfigSource;
use crate::target::{MissingTargetVar, Target};
use std::sync::Arc;
use thiserror::Error;

/// Names `LOCKSTEP_LOCAL_DIR`: when set, flags come from that directory (AppConfig Agent local
/// development naming) instead of AppConfig.
pub const LOCAL_DIR_VAR: &str = "LOCKSTEP_LOCAL_DIR";

/// Why a function could not start.
#[derive(Debug, Error)]
pub enum InitError {
    /// A setting did not parse.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A `FORCE_` variable did not parse.
    #[error(transparent)]
    Override(#[from] OverrideError),
    /// `LOCKSTEP_PUBLIC_FLAGS` names an undeclared flag.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The AppConfig target is not configured.
    #[error("{0} (or set {LOCAL_DIR_VAR} to read flags from a local directory)")]
    MissingTarget(#[from] MissingTargetVar),
    /// A durable snapshot table is configured, but this build cannot write DynamoDB.
    #[error("{SNAPSHOT_TABLE_VAR} is set, but lockstep was built without its `dynamodb` feature")]
    SnapshotWithoutDynamoDb,
}

/// Builds the flag cache from the environment and prefetches (rule 5): AppConfig when
/// `LOCKSTEP_APPCONFIG_*` are set, a local directory when `LOCKSTEP_LOCAL_DIR` is; with
/// `LOCKSTEP_SNAPSHOT_TABLE`, a durable last-known-good snapshot in that DynamoDB table. `aws` is
/// the function's one AWS configuration, shared with its other clients.
pub async fn cache_from_env(
    catalog: FlagCatalog,
    aws: &aws_config::SdkConfig,
) -> Result<FlagCache, InitError> {
    let settings = Settings::from_env()?;
    let catalog = match &settings.public_flags {
        Some(names) => catalog.with_public(names)?,
        None => catalog,
    };
    let overrides = Overrides::from_env(&catalog)?;
    let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let local_dir = non_empty(LOCAL_DIR_VAR);
    let target = match &local_dir {
        Some(_) => Target::from_env().unwrap_or_else(|_| local_target()),
        None => Target::from_env()?,
    };
    let source: Box<dyn ConfigSource> = match &local_dir {
        Some(dir) => Box::new(LocalDirSource::new(dir, target.clone())),
        None => Box::new(AppConfigSource::new(appconfig::client(aws), target.clone())),
    };
    let options = CacheOptions {
        catalog,
        overrides,
        settings,
        clock: Arc::new(CoarseClock::new()),
    };
    let durable = match non_empty(SNAPSHOT_TABLE_VAR) {
        None => None,
        Some(table) => Some(durable_store(aws, table, &target)?),
    };
    Ok(FlagCache::build(source, options, durable).await)
}

#[cfg(feature = "dynamodb")]
fn durable_store(
    aws: &aws_config::SdkConfig,
    table: String,
    target: &Target,
) -> Result<Arc<dyn crate::durable::SnapshotStore>, InitError> {
    let client = aws_sdk_dynamodb::Client::new(aws);
    Ok(Arc::new(crate::durable::DynamoSnapshots::new(
        client, table, target,
    )))
}

#[cfg(not(feature = "dynamodb"))]
fn durable_store(
    _aws: &aws_config::SdkConfig,
    _table: String,
    _target: &Target,
) -> Result<Arc<dyn crate::durable::SnapshotStore>, InitError> {
    Err(InitError::SnapshotWithoutDynamoDb)
}

/// The application, environment and profile names local runs use.
pub fn local_target() -> Target {
    Target {
        application: "lockstep".into(),
        environment: "local".into(),
        profile: "flags".into(),
    }
}
