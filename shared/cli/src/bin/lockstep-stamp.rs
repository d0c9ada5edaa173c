//! `lockstep-stamp`: the deployment stamping as a command, for CD pipelines that deploy without
//! the AppConfig extension and for local development.
//!
//! ```text
//! lockstep-stamp --in flags.json --out stamped.json [--previous deployed.json]
//!                [--duration-seconds 0] [--at 2026-11-21T10:00:00Z]
//!                [--drain 300s] [--rotate-journey-key]
//! ```
//!
//! `--previous` is the currently deployed content (Freeform, or feature flags in stored or
//! retrieval form): flags whose value did not change keep its stamps. `--at` defaults to now (the
//! deployment's start). `--drain` makes the flags switched off a planned switch-off (rule 9);
//! `--rotate-journey-key` makes a new journey key. Prints one line per flag: new, changed or
//! kept, with its stamp (and drain), and what happened to the journey key (never the key). The output
//! is written to a temporary file and renamed, so a failure never leaves half a file. Exit 2 on
//! any failure (bad arguments, unreadable files, content that cannot be stamped), with nothing
//! written.

use chrono::{DateTime, Utc};
use clap::Parser;
use lockstep::stamp::{stamp_with, StampError, StampOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use thiserror::Error;

/// The usage line printed after every failure.
const USAGE: &str = "usage: lockstep-stamp --in FILE --out FILE [--previous FILE] [--duration-seconds N] [--at RFC3339] [--drain DURATION] [--rotate-journey-key]";

#[derive(Parser)]
#[command(
    name = "lockstep-stamp",
    about = "Stamps configuration content for a deployment",
    version
)]
struct Args {
    /// The content to stamp.
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// Where the stamped content is written.
    #[arg(long = "out", value_name = "FILE")]
    output: PathBuf,
    /// The currently deployed content: unchanged flags keep its stamps.
    #[arg(long, value_name = "FILE")]
    previous: Option<PathBuf>,
    /// Δ, the deployment strategy's duration, in whole seconds.
    #[arg(long = "duration-seconds", value_name = "N", default_value_t = 0)]
    duration_seconds: u64,
    /// T, the deployment's start (RFC 3339); default now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_at)]
    at: Option<DateTime<Utc>>,
    /// A drain time for the flags switched off: `300`, `300s`, `5m`, `1h` (at most 24 h).
    #[arg(long, value_name = "DURATION", value_parser = parse_drain)]
    drain: Option<Duration>,
    /// Make a new journey key to sign with; the current one still verifies.
    #[arg(long)]
    rotate_journey_key: bool,
}

fn parse_at(value: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc))
}

fn parse_drain(value: &str) -> Result<Duration, String> {
    lockstep::settings::parse_duration_text(value).map_err(|why| format!("{value:?}: {why}"))
}

/// Why nothing was written.
#[derive(Debug, Error)]
enum Failure {
    /// A file could not be read or written.
    #[error("{path}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The content cannot be stamped.
    #[error(transparent)]
    Stamp(#[from] StampError),
}

fn file(path: &Path) -> impl FnOnce(std::io::Error) -> Failure + '_ {
    move |source| Failure::File {
        path: path.display().to_string(),
        source,
    }
}

fn run(args: Args) -> Result<(), Failure> {
    let content = std::fs::read(&args.input).map_err(file(&args.input))?;
    let previous = args
        .previous
        .as_deref()
        .map(|p| std::fs::read(p).map_err(file(p)))
        .transpose()?;
    let options = StampOptions {
        drain: args.drain,
        rotate_key: args.rotate_journey_key,
        ..StampOptions::default()
    };
    let stamped = stamp_with(
        &content,
        previous.as_deref(),
        args.at.unwrap_or_else(Utc::now),
        Duration::from_secs(args.duration_seconds),
        &options,
    )?;
    let temporary = args.output.with_extension("stamping.tmp");
    std::fs::write(&temporary, &stamped.content).map_err(file(&temporary))?;
    std::fs::rename(&temporary, &args.output).map_err(file(&args.output))?;
    for (name, (change, s)) in &stamped.flags {
        let drain = stamped
            .drains
            .get(name)
            .map(|d| format!(", drainSeconds {}", d.as_secs()))
            .unwrap_or_default();
        println!(
            "{name}: {change} (lastModifiedTimestamp {}, deploymentDurationSeconds {}{drain})",
            s.at.to_rfc3339(),
            s.deployment_duration.as_secs()
        );
    }
    println!("journey key: {:?}", stamped.key);
    println!("wrote {}", args.output.display());
    Ok(())
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) if !error.use_stderr() => {
            // --help and --version.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("lockstep-stamp: {}", lockstep::error_chain(&failure));
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
