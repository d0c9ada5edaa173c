//! What the runner prints on stdout once it listens: where everything is, and last the
//! `listening on <base>` line that scripts and the browser tests wait for.

use super::provision::{SNAPSHOT_TABLE, TABLE};
use super::services::LocalServices;
use crate::fleet::FleetOptions;
use lockstep::Settings;
use std::fmt::Write;

/// The text, for the runner listening at `base` (`http://127.0.0.1:<port>`).
pub fn banner(
    base: &str,
    fleet: FleetOptions,
    settings: &Settings,
    services: &LocalServices,
) -> String {
    lines(
        base,
        fleet,
        settings,
        &services.appconfig.endpoint,
        &services.dynamo.endpoint,
    )
}

fn lines(
    base: &str,
    fleet: FleetOptions,
    settings: &Settings,
    appconfig: &str,
    dynamo: &str,
) -> String {
    let mut text = String::new();
    let mut line = |l: String| {
        let _ = writeln!(text, "{l}");
    };
    line("Lockstep local runner".into());
    line(format!("  SPA          {base}/"));
    line(format!("  fleet view   {base}/fleet"));
    line(format!("  GET  {base}/config"));
    line(format!(
        "  POST {base}/local/auth/sign-in  {{\"user\": \"<name>\"}} -> a bearer token (dev issuer)"
    ));
    line(format!(
        "  POST {base}/feature-x/submissions  (Authorization: Bearer <token>)"
    ));
    line(format!(
        "  GET  {base}/feature-x/submissions[?journeyId=...]"
    ));
    line(format!("  GET  {base}/feature-x/submissions/{{id}}"));
    line(format!(
        "  fleet: {} instances per function, cold starts {} ms apart (LOCKSTEP_INSTANCES)",
        fleet.instances,
        fleet.stagger.as_millis()
    ));
    line(format!(
        "  flags: AppConfig lockstep/local/flags on ministack {appconfig} (P = {} s; deploy with ./scripts/deploy-local or the fleet view)",
        settings.poll_interval.as_secs()
    ));
    line(format!(
        "  DynamoDB Local: {dynamo} (tables {TABLE}, {SNAPSHOT_TABLE})"
    ));
    line("Ctrl-C stops the runner, ministack and DynamoDB Local.".into());
    line(format!("listening on {base}"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_banner_ends_with_the_line_the_browser_tests_wait_for() {
        let settings = Settings::from_lookup(|_| None).unwrap();
        let fleet = FleetOptions {
            instances: 4,
            stagger: Duration::from_millis(11_250),
        };

        let text = lines(
            "http://127.0.0.1:41234",
            fleet,
            &settings,
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
        );

        assert_eq!(
            text.lines().last(),
            Some("listening on http://127.0.0.1:41234")
        );
        assert!(text.contains("  SPA          http://127.0.0.1:41234/\n"));
        assert!(text.contains("4 instances per function, cold starts 11250 ms apart"));
    }
}
