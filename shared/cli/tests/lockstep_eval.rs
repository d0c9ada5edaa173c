//! `lockstep eval` and `lockstep validate` as a pipeline runs them: one JSON object on stdout
//! and exit 0, or exit 2 with a message naming the flag and the rule.

use serde_json::{json, Value};
use std::process::Output;

const FEATURES: &str = r#"{
  "checkout_v2": {
    "default": false,
    "rules": {
      "staff": {
        "when_match": true,
        "conditions": [{"action": "ENDSWITH", "key": "email", "value": "@example.com"}]
      },
      "weekend pause": {
        "when_match": false,
        "conditions": [{"action": "SCHEDULE_BETWEEN_DAYS_OF_WEEK", "key": "CURRENT_DAY_OF_WEEK",
                        "value": {"DAYS": ["SATURDAY", "SUNDAY"], "TIMEZONE": "Europe/Berlin"}}]
      },
      "a quarter of everyone": {
        "split": [
          {"variant": "on", "value": true, "weight": 2500},
          {"variant": "off", "value": false, "weight": 7500}
        ]
      }
    }
  }
}"#;

fn lockstep(dir: &std::path::Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lockstep"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn workdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lockstep-eval-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("features.json"), FEATURES).unwrap();
    dir
}

fn answer(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn eval_prints_the_value_reason_and_variant_for_the_caller() {
    let dir = workdir("answer");
    let staff = lockstep(
        &dir,
        &[
            "eval",
            "--content",
            "features.json",
            "--flag",
            "checkout_v2",
            "--context",
            r#"{"targetingKey": "u1", "email": "ana@example.com"}"#,
            "--at",
            "2026-12-07T10:00:00Z",
        ],
    );
    assert_eq!(
        answer(&staff),
        json!({"value": true, "reason": "TARGETING_MATCH", "variant": "staff"})
    );
    // Saturday in Berlin: the time-based rule answers before the split.
    let weekend = lockstep(
        &dir,
        &[
            "eval",
            "--content",
            "features.json",
            "--flag",
            "checkout_v2",
            "--context",
            r#"{"targetingKey": "u1"}"#,
            "--at",
            "2026-12-05T12:00:00+01:00",
        ],
    );
    assert_eq!(answer(&weekend)["variant"], "weekend pause");
    // A weekday, no e-mail: the split decides, and says which bucket.
    let split = answer(&lockstep(
        &dir,
        &[
            "eval",
            "--content",
            "features.json",
            "--flag",
            "checkout_v2",
            "--context",
            r#"{"targetingKey": "u1"}"#,
            "--at",
            "2026-12-07T10:00:00Z",
        ],
    ));
    assert_eq!(split["reason"], "SPLIT");
    assert_eq!(split["value"], json!(split["variant"] == "on"));
    // No caller: no bucket, the default.
    let anonymous = answer(&lockstep(
        &dir,
        &[
            "eval",
            "--content",
            "features.json",
            "--flag",
            "checkout_v2",
            "--at",
            "2026-12-07T10:00:00Z",
        ],
    ));
    assert_eq!(
        anonymous,
        json!({"value": false, "reason": "DEFAULT", "variant": "default"})
    );
}

#[test]
fn invalid_content_exits_2_naming_the_flag_and_the_rule() {
    let dir = workdir("invalid");
    let bad = FEATURES.replace("ENDSWITH", "ENDS_WITH");
    std::fs::write(dir.join("bad.json"), bad).unwrap();
    for command in ["validate", "eval"] {
        let mut args = vec![command, "--content", "bad.json"];
        if command == "eval" {
            args.extend(["--flag", "checkout_v2"]);
        }
        let output = lockstep(&dir, &args);
        assert_eq!(output.status.code(), Some(2), "{command}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(
            message.contains(r#"flag "checkout_v2", rule "staff""#),
            "{command}: {message}"
        );
        assert!(message.contains("ENDS_WITH"), "{command}: {message}");
        assert!(output.stdout.is_empty(), "{command}");
    }
}

#[test]
fn validate_reports_what_valid_content_holds() {
    let dir = workdir("valid");
    let output = lockstep(&dir, &["validate", "--content", "features.json"]);
    assert_eq!(
        answer(&output),
        json!({"flags": 1, "definedByRules": ["checkout_v2"], "stamped": false})
    );
}

#[test]
fn a_bad_context_a_bad_instant_and_a_missing_flag_exit_2() {
    let dir = workdir("usage");
    for (args, needle) in [
        (
            vec!["--flag", "checkout_v2", "--context", "[1]"],
            "--context",
        ),
        (vec!["--flag", "checkout_v2", "--at", "tomorrow"], "--at"),
        (vec!["--flag", "nope"], "\"nope\" is not in the content"),
    ] {
        let mut all = vec!["eval", "--content", "features.json"];
        all.extend(args);
        let output = lockstep(&dir, &all);
        assert_eq!(output.status.code(), Some(2), "{all:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(needle),
            "{all:?}"
        );
    }
}
