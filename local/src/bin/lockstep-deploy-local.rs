//! `lockstep-deploy-local`: a simulated AppConfig deployment on the local runner's flags file
//! (what `scripts/deploy-local` runs; the fleet view's Deploy button runs the same code).
//!
//! ```text
//! lockstep-deploy-local isFeatureXEnabled=true [useSubmissionsGsi=false ...] [--duration-seconds 60]
//! ```
//!
//! The directory is `LOCKSTEP_LOCAL_DIR` (default the ignored `.lockstep/local/config`, seeded
//! from the sample in `local/config`); P and ε for the reported
//! `consistentAt` are the runner's (`AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS`, default 15
//! locally; `LOCKSTEP_EPSILON_SECONDS`). Exit 2 and nothing written on a refused request.

use lockstep::Settings;
use lockstep_local::deploy::{deploy, DeployRequest};
use lockstep_local::LOCAL_DEFAULTS;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str =
    "usage: lockstep-deploy-local flag=true|false ... [--duration-seconds N (0 to 86400)]";

fn run() -> Result<String, String> {
    let lookup = |name: &str| {
        std::env::var(name).ok().or_else(|| {
            LOCAL_DEFAULTS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    };
    let mut flags = BTreeMap::new();
    let mut duration = Duration::ZERO;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--duration-seconds" => {
                let value = args.next().ok_or("--duration-seconds needs a value")?;
                duration = Duration::from_secs(value.parse().map_err(|_| {
                    format!("--duration-seconds {value:?}: whole seconds, 0 or more")
                })?);
            }
            "-h" | "--help" => return Err(String::new()),
            _ => match arg.split_once('=') {
                Some((name, "true")) => {
                    flags.insert(name.to_owned(), true);
                }
                Some((name, "false")) => {
                    flags.insert(name.to_owned(), false);
                }
                _ => return Err(format!("{arg:?}: expected flag=true or flag=false")),
            },
        }
    }
    let request = DeployRequest::new(flags, duration, &lockstep_sample::product::catalog())
        .map_err(|e| e.to_string())?;
    let settings = Settings::from_lookup(lookup).map_err(|e| e.to_string())?;
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let dir = lockstep_local::flags_dir(&cwd).map_err(|e| format!("local flags: {e}"))?;
    let deployment = deploy(&dir, &request, chrono::Utc::now(), settings.window())
        .map_err(|e| lockstep::error_chain(&e))?;
    Ok(deployment.report())
}

fn main() -> ExitCode {
    match run() {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            if !message.is_empty() {
                eprintln!("lockstep-deploy-local: {message}");
            }
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
