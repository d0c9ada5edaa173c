//! `cargo run -p lockstep-local` (or `./scripts/run`): starts DynamoDB Local and ministack (the
//! local AppConfig), creates the tables and the AppConfig application, environment, profiles and
//! strategies, deploys the sample flags once (stamped, all at once), and serves the functions in
//! fleet mode (`LOCKSTEP_INSTANCES` instances of each, default 4, each with its own AppConfigData
//! session), the SPA and the fleet view on 127.0.0.1:3000 (`--port` or `LOCKSTEP_PORT`; 0 picks
//! a free port). Ctrl-C or SIGTERM stops everything. The steps: [`lockstep_local::start`].

use clap::Parser;
use lockstep_local::start::{self, environment, Options};
use std::process::ExitCode;

fn main() -> ExitCode {
    let options = Options::parse();
    // Before any thread exists: the SDK clients read these, as they would in Lambda.
    environment::set_local_defaults();
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .init();
    lockstep_http::catch_panic::install_quiet_hook();
    match start::run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lockstep-local: {}", lockstep::error_chain(&error));
            ExitCode::FAILURE
        }
    }
}
