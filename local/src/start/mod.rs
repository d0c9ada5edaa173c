//! A local run from start to stop, in order: the local services (DynamoDB Local and ministack),
//! what they must hold (tables, the AppConfig layout, the first deployment), the [`Runner`] over
//! them (with the template's alarms as the environment's monitors), the alarm loop and the HTTP
//! server, until Ctrl-C or SIGTERM; then the services are stopped and the endpoint file removed.
//!
//! - [`options`]: the command line (each option also read from its `LOCKSTEP_*` variable).
//! - [`environment`]: the variables a run sets for the SDK clients (defaults, endpoints).
//! - [`services`]: DynamoDB Local and ministack, started together and stopped together.
//! - [`provision`]: the tables, the AppConfig layout and the initial flags, deployed once.
//! - [`banner`]: what the runner prints once it listens.
//! - [`error`]: why a run could not start.

pub mod banner;
pub mod environment;
pub mod error;
pub mod options;
pub mod provision;
pub mod services;

pub use error::StartError;
pub use options::Options;

use crate::fleet::FleetOptions;
use crate::{router, Runner};
use lockstep::{Overrides, Settings, SystemClock};
use services::LocalServices;
use std::sync::Arc;
use std::time::Duration;

/// How often the alarm loop evaluates the template's alarms (wall time). CloudWatch evaluates
/// once a minute; a few seconds shows a local rollback soon after the minute that caused it.
pub const ALARM_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Runs the runner until Ctrl-C or SIGTERM. Call [`environment::set_local_defaults`] first,
/// before any thread exists.
pub fn run(options: &Options) -> Result<(), StartError> {
    let cwd = std::env::current_dir().map_err(StartError::CurrentDir)?;
    let runtime = tokio::runtime::Runtime::new().map_err(StartError::Runtime)?;
    let services = runtime.block_on(LocalServices::start(&cwd, options.dynamodb_port))?;
    environment::point_sdk_at(&services);
    let result = runtime.block_on(serve(options, &services));
    runtime.block_on(services.stop());
    let _ = std::fs::remove_file(cwd.join(provision::ENDPOINT_FILE));
    eprintln!("stopped");
    result
}

/// Provisions the services, builds the runner over them and serves it on 127.0.0.1.
async fn serve(options: &Options, services: &LocalServices) -> Result<(), StartError> {
    let settings = Settings::from_env()?;
    let catalog = lockstep_sample::product::catalog();
    let overrides = Overrides::from_env(&catalog)?;
    let fleet = FleetOptions::from_env(settings.poll_interval)?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let stores = provision::stores(&aws, &settings).await?;
    let appconfig = provision::appconfig(&aws, &settings, catalog, &options.initial_flags).await?;
    provision::write_endpoint_file(&services.appconfig.endpoint)?;
    let runner = Runner::new(
        appconfig,
        settings.clone(),
        overrides,
        Arc::new(SystemClock),
        stores.submissions,
        Some(stores.snapshots),
        fleet,
    )
    .await?;
    let runner = Arc::new(runner);
    let alarm_loop = tokio::spawn(check_alarms_forever(runner.clone()));
    let port = options.port;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| StartError::Bind { port, source })?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(StartError::Serve)?
    );
    print!("{}", banner::banner(&base, fleet, &settings, services));
    let served = axum::serve(listener, router(runner))
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(StartError::Serve);
    // Before the services stop: a check against a stopped ministack would only log failures.
    alarm_loop.abort();
    served
}

/// The alarm loop (docs/local.md, "Alarms"): [`Runner::check_alarms`] now and every
/// [`ALARM_CHECK_INTERVAL`] until the run ends.
async fn check_alarms_forever(runner: Arc<Runner>) {
    let mut every = tokio::time::interval(ALARM_CHECK_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        runner.check_alarms().await;
    }
}

/// Ctrl-C or SIGTERM (what a test harness or a process manager sends).
async fn shutdown() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
