//! Watches a local configuration through the real flag cache and prints, as JSON lines, what an
//! instance would answer: version, degraded state, and each flag's value and consistency.
//!
//! `cargo run -p lockstep --example watch` reads `local/config/lockstep:local:flags.json`
//! (AppConfig Agent local-development naming). Edit the file and watch the change arrive within
//! P (`AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS`, 15 s here unless set), then become
//! consistent at `T + Δ + P + ε`. Options: `LOCKSTEP_LOCAL_DIR`, `LOCKSTEP_WATCH_EVERY_MS`.

use lockstep::appconfig::Target;
use lockstep::cache::CacheOptions;
use lockstep::local::LocalDirSource;
use lockstep::{FlagCache, FlagCatalog, FlagDecl, Overrides, Settings, SystemClock};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .init();
    if std::env::var_os(lockstep::settings::POLL_INTERVAL_VAR).is_none() {
        // SAFETY: single-threaded at this point; nothing else reads the environment yet.
        unsafe { std::env::set_var(lockstep::settings::POLL_INTERVAL_VAR, "15") };
    }
    let settings = Settings::from_env()?;
    let mut catalog = FlagCatalog::new(vec![
        FlagDecl::public("isFeatureXEnabled"),
        FlagDecl::internal("useSubmissionsGsi"),
    ])?;
    if let Some(public) = &settings.public_flags {
        catalog = catalog.with_public(public)?;
    }
    let overrides = Overrides::from_env(&catalog)?;
    let dir = std::env::var("LOCKSTEP_LOCAL_DIR").unwrap_or_else(|_| "local/config".into());
    let target = Target {
        application: "lockstep".into(),
        environment: "local".into(),
        profile: "flags".into(),
    };
    let source = LocalDirSource::new(&dir, target);
    eprintln!("watching {} (Ctrl-C to stop)", source.path().display());
    let every: u64 = std::env::var("LOCKSTEP_WATCH_EVERY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let options = CacheOptions {
        catalog,
        overrides,
        settings,
        clock: Arc::new(SystemClock),
    };
    let cache = FlagCache::new(Box::new(source), options).await;
    loop {
        let view = cache.read().await;
        let flags: serde_json::Map<String, serde_json::Value> = view
            .snapshot()
            .flags()
            .iter()
            .filter_map(|f| view.status(&f.name).map(|s| (f.name.clone(), s)))
            .map(|(name, s)| {
                (
                    name,
                    json!({"value": s.value, "consistent": s.consistent, "consistentAt": s.consistent_at, "forced": s.forced}),
                )
            })
            .collect();
        let line = json!({
            "now": view.now(),
            "version": view.snapshot().version,
            "degraded": view.degraded().map(|d| d.reason()),
            "isBackendConsistent": view.is_backend_consistent(),
            "flags": flags,
        });
        println!("{line}");
        tokio::time::sleep(Duration::from_millis(every)).await;
    }
}
