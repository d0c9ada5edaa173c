//! This product's flags and the start-up wiring every function shares.

use crate::appconfig::{self, AppConfigSource, Target};
use crate::cache::{CacheOptions, FlagCache};
use crate::catalog::{CatalogError, FlagCatalog, FlagDecl};
use crate::clock::CoarseClock;
use crate::durable::{DynamoSnapshots, SNAPSHOT_TABLE_VAR};
use crate::local::LocalDirSource;
use crate::overrides::{OverrideError, Overrides};
use crate::settings::{Settings, SettingsError};
use crate::source::ConfigSource;
use std::sync::Arc;
use thiserror::Error;

/// Journey X is offered and its endpoints open.
pub const FEATURE_X: &str = "isFeatureXEnabled";
/// The submissions listing queries the GSI (internal).
pub const USE_SUBMISSIONS_GSI: &str = "useSubmissionsGsi";

/// Names `LOCKSTEP_LOCAL_DIR`: when set, flags come from that directory (AppConfig Agent local
/// development naming) instead of AppConfig.
pub const LOCAL_DIR_VAR: &str = "LOCKSTEP_LOCAL_DIR";

/// The product's declared flags: every flag disabled unless declared otherwise.
pub fn catalog() -> FlagCatalog {
    FlagCatalog::new(vec![
        FlagDecl::public(FEATURE_X),
        FlagDecl::internal(USE_SUBMISSIONS_GSI),
    ])
    .expect("the product catalog is valid")
}

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
    #[error("{0} is not set (or set {LOCAL_DIR_VAR} to read flags from a local directory)")]
    MissingTarget(&'static str),
}

/// Builds the flag cache from the environment and prefetches (rule 5): AppConfig when
/// `LOCKSTEP_APPCONFIG_*` are set, a local directory when `LOCKSTEP_LOCAL_DIR` is; with
/// `LOCKSTEP_SNAPSHOT_TABLE`, a durable last-known-good snapshot in that DynamoDB table.
pub async fn cache_from_env(catalog: FlagCatalog) -> Result<FlagCache, InitError> {
    let settings = Settings::from_env()?;
    let catalog = match &settings.public_flags {
        Some(names) => catalog.with_public(names)?,
        None => catalog,
    };
    let overrides = Overrides::from_env(&catalog)?;
    let local_dir = std::env::var(LOCAL_DIR_VAR).ok().filter(|d| !d.is_empty());
    let snapshot_table = std::env::var(SNAPSHOT_TABLE_VAR)
        .ok()
        .filter(|t| !t.is_empty());
    let target = match &local_dir {
        Some(_) => Target::from_env().unwrap_or_else(|_| local_target()),
        None => Target::from_env().map_err(InitError::MissingTarget)?,
    };
    let load_aws = || aws_config::load_defaults(aws_config::BehaviorVersion::latest());
    // One AWS configuration for every client this instance needs.
    let mut aws = None;
    let source: Box<dyn ConfigSource> = match &local_dir {
        Some(dir) => Box::new(LocalDirSource::new(dir, target.clone())),
        None => {
            let shared = aws.insert(load_aws().await);
            Box::new(AppConfigSource::new(
                appconfig::client(shared),
                target.clone(),
                settings.poll_interval,
            ))
        }
    };
    let options = CacheOptions {
        catalog,
        overrides,
        settings,
        clock: Arc::new(CoarseClock::new()),
    };
    let Some(table) = snapshot_table else {
        return Ok(FlagCache::new(source, options).await);
    };
    let shared = match aws {
        Some(shared) => shared,
        None => load_aws().await,
    };
    let durable = DynamoSnapshots::new(aws_sdk_dynamodb::Client::new(&shared), table, &target);
    Ok(FlagCache::with_durable_snapshot(source, options, Arc::new(durable)).await)
}

/// The application, environment and profile names local runs use.
pub fn local_target() -> Target {
    Target {
        application: "lockstep".into(),
        environment: "local".into(),
        profile: "flags".into(),
    }
}
