//! The runner's command line. Every option can also be set by its `LOCKSTEP_*` variable (the
//! browser tests and `./scripts/run` use those); the command line wins.

use clap::Parser;
use std::path::PathBuf;

/// The sample flags a local run deploys first (tracked; never written by a local run: local
/// deployments go to the local AppConfig).
pub const SAMPLE_FLAGS: &str = "local/config/lockstep:local:flags.json";

/// The local runner: the functions on 127.0.0.1 in fleet mode, flags from ministack (the local
/// AppConfig), submissions in DynamoDB Local, the SPA at `/` and the fleet view at `/fleet`.
/// Fleet size (`LOCKSTEP_INSTANCES`), P, ε and overrides come from the environment, as in
/// Lambda.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "lockstep-local", version)]
pub struct Options {
    /// The port on 127.0.0.1 (0: a free one; the runner prints `listening on …`).
    #[arg(long, env = "LOCKSTEP_PORT", default_value_t = 3000)]
    pub port: u16,
    /// DynamoDB Local's port on 127.0.0.1 (0: a free one).
    #[arg(long, env = "LOCKSTEP_DYNAMODB_PORT", default_value_t = 0)]
    pub dynamodb_port: u16,
    /// The flags file deployed first (the browser test starts with the flag off).
    #[arg(long, env = "LOCKSTEP_INITIAL_FLAGS", default_value = SAMPLE_FLAGS)]
    pub initial_flags: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Options::command().debug_assert();
    }

    #[test]
    fn each_option_defaults_as_documented_and_names_its_variable() {
        let command = Options::command();
        let arg = |id: &str| {
            let arg = command.get_arguments().find(|a| a.get_id() == id).unwrap();
            (
                arg.get_default_values()[0].to_str().unwrap().to_owned(),
                arg.get_env().unwrap().to_str().unwrap().to_owned(),
            )
        };

        assert_eq!(arg("port"), ("3000".into(), "LOCKSTEP_PORT".into()));
        assert_eq!(
            arg("dynamodb_port"),
            ("0".into(), "LOCKSTEP_DYNAMODB_PORT".into())
        );
        assert_eq!(
            arg("initial_flags"),
            (SAMPLE_FLAGS.into(), "LOCKSTEP_INITIAL_FLAGS".into())
        );
    }

    #[test]
    fn the_command_line_sets_every_option() {
        let options = Options::try_parse_from([
            "lockstep-local",
            "--port",
            "0",
            "--dynamodb-port",
            "8000",
            "--initial-flags",
            "flags.json",
        ])
        .unwrap();

        assert_eq!(
            options,
            Options {
                port: 0,
                dynamodb_port: 8000,
                initial_flags: "flags.json".into(),
            }
        );
    }

    #[test]
    fn a_port_that_is_not_a_number_is_refused() {
        let refused = Options::try_parse_from(["lockstep-local", "--port", "http"]);

        assert!(refused.is_err());
    }
}
