//! This product's flags and the start-up wiring every function shares.

use crate::appconfig::{self, AppConfigSource, Target};
use crate::cache::{CacheOptions, FlagCache};
use crate::catalog::{CatalogError, FlagCatalog, FlagDecl};
use crate::clock::CoarseClock;
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
/// `LOCKSTEP_APPCONFIG_*` are set, a local directory when `LOCKSTEP_LOCAL_DIR` is.
pub async fn cache_from_env(catalog: FlagCatalog) -> Result<FlagCache, InitError> {
    let settings = Settings::from_env()?;
    let catalog = match &settings.public_flags {
        Some(names) => catalog.with_public(names)?,
        None => catalog,
    };
    let overrides = Overrides::from_env(&catalog)?;
    let source: Box<dyn ConfigSource> = match std::env::var(LOCAL_DIR_VAR) {
        Ok(dir) if !dir.is_empty() => {
            let target = Target::from_env().unwrap_or_else(|_| local_target());
            Box::new(LocalDirSource::new(dir, target))
        }
        _ => {
            let target = Target::from_env().map_err(InitError::MissingTarget)?;
            let client = appconfig::client_from_env().await;
            Box::new(AppConfigSource::new(client, target, settings.poll_interval))
        }
    };
    let options = CacheOptions {
        catalog,
        overrides,
        settings,
        clock: Arc::new(CoarseClock::new()),
    };
    Ok(FlagCache::new(source, options).await)
}

/// The application, environment and profile names local runs use.
pub fn local_target() -> Target {
    Target {
        application: "lockstep".into(),
        environment: "local".into(),
        profile: "flags".into(),
    }
}
