//! `lockstep-stamp` as a pipeline runs it: files in, stamped file out, a report per flag, exit 2
//! and nothing written on failure.

use chrono::{DateTime, Utc};
use lockstep::stamp::stamp;
use std::time::Duration;

const FREEFORM_V1: &str = r#"{"alpha": true, "beta": false, "gamma": true}"#;
const FREEFORM_V2: &str = r#"{"alpha": true, "beta": true, "gamma": true}"#;
const T1: &str = "2026-11-21T10:00:00Z";
const T2: &str = "2026-11-21T11:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn the_pipeline_command_writes_the_stamped_file_and_reports_each_flag() {
    let dir = std::env::temp_dir().join(format!("lockstep-stamp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("v1.json"), FREEFORM_V1).unwrap();
    std::fs::write(dir.join("v2.json"), FREEFORM_V2).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lockstep-stamp"))
            .current_dir(&dir)
            .args(args)
            .output()
            .unwrap()
    };

    let first = run(&[
        "--in",
        "v1.json",
        "--out",
        "d1.json",
        "--at",
        T1,
        "--duration-seconds",
        "60",
    ]);
    let second = run(&[
        "--in",
        "v2.json",
        "--previous",
        "d1.json",
        "--out",
        "d2.json",
        "--at",
        T2,
    ]);
    let broken = run(&["--in", "missing.json", "--out", "d3.json"]);

    assert!(first.status.success());
    assert!(second.status.success());
    let report = String::from_utf8(second.stdout).unwrap();
    assert!(report.contains("alpha: kept"), "{report}");
    assert!(report.contains("beta: changed"), "{report}");
    let written = std::fs::read(dir.join("d2.json")).unwrap();
    let expected = stamp(
        FREEFORM_V2.as_bytes(),
        Some(&std::fs::read(dir.join("d1.json")).unwrap()),
        t(T2),
        Duration::ZERO,
    )
    .unwrap();
    assert_eq!(
        written, expected.content,
        "the command and the library write the same bytes"
    );
    assert_eq!(broken.status.code(), Some(2));
    assert!(!dir.join("d3.json").exists(), "nothing written on failure");

    // A planned switch-off: beta goes off with a 5-minute drain; the journey key is kept.
    std::fs::write(dir.join("v3.json"), FREEFORM_V1).unwrap();
    let drained = run(&[
        "--in",
        "v3.json",
        "--previous",
        "d2.json",
        "--out",
        "d3.json",
        "--drain",
        "5m",
    ]);
    assert!(drained.status.success(), "{drained:?}");
    let report = String::from_utf8(drained.stdout).unwrap();
    assert!(report.contains("drainSeconds 300"), "{report}");
    assert!(report.contains("journey key: Kept"), "{report}");
    let bad = run(&[
        "--in",
        "v3.json",
        "--previous",
        "d2.json",
        "--out",
        "d4.json",
        "--drain",
        "5x",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8(bad.stderr).unwrap().contains("--drain"));
    assert!(!dir.join("d4.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
