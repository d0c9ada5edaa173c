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
//! is written to a temporary file and renamed, so a failure never leaves half a file.

use chrono::{DateTime, Utc};
use lockstep::stamp::{stamp_with, StampOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

struct Args {
    input: PathBuf,
    output: PathBuf,
    previous: Option<PathBuf>,
    duration: Duration,
    at: DateTime<Utc>,
    options: StampOptions,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut input, mut output, mut previous, mut duration, mut at) =
        (None, None, None, Duration::ZERO, Utc::now());
    let mut options = StampOptions::default();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--in" => input = Some(PathBuf::from(value()?)),
            "--out" => output = Some(PathBuf::from(value()?)),
            "--previous" => previous = Some(PathBuf::from(value()?)),
            "--duration-seconds" => {
                duration = Duration::from_secs(
                    value()?
                        .parse()
                        .map_err(|_| "--duration-seconds takes whole seconds")?,
                )
            }
            "--at" => {
                at = DateTime::parse_from_rfc3339(&value()?)
                    .map_err(|e| format!("--at: {e}"))?
                    .with_timezone(&Utc)
            }
            "--drain" => {
                let text = value()?;
                options.drain = Some(
                    lockstep::settings::parse_duration_text(&text)
                        .map_err(|why| format!("--drain {text:?}: {why}"))?,
                )
            }
            "--rotate-journey-key" => options.rotate_key = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        input: input.ok_or("--in is required")?,
        output: output.ok_or("--out is required")?,
        previous,
        duration,
        at,
        options,
    })
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let content =
        std::fs::read(&args.input).map_err(|e| format!("{}: {e}", args.input.display()))?;
    let previous = args
        .previous
        .as_ref()
        .map(|p| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display())))
        .transpose()?;
    let stamped = stamp_with(
        &content,
        previous.as_deref(),
        args.at,
        args.duration,
        &args.options,
    )
    .map_err(|e| lockstep::error_chain(&e))?;
    let temporary = args.output.with_extension("stamping.tmp");
    std::fs::write(&temporary, &stamped.content)
        .map_err(|e| format!("{}: {e}", temporary.display()))?;
    std::fs::rename(&temporary, &args.output)
        .map_err(|e| format!("{}: {e}", args.output.display()))?;
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
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("lockstep-stamp: {message}");
            }
            eprintln!("usage: lockstep-stamp --in FILE --out FILE [--previous FILE] [--duration-seconds N] [--at RFC3339] [--drain DURATION] [--rotate-journey-key]");
            ExitCode::from(2)
        }
    }
}
