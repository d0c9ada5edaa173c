//! What the per-user tests share: the flag they roll out, a rollout of it, its users, and who
//! is inside a share (flagd's bucketing through the real evaluator: a wider share keeps everyone
//! in).
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use lockstep::targeted::Context;
use serde_json::{json, Value};

/// The flag rolled out.
pub const X: &str = "checkout";

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A rollout of `percent` % under the split rule `rule`.
pub fn rollout(percent: u32, rule: &str) -> Value {
    json!({"default": false, "rules": {rule: {"split": [
        {"variant": "on", "value": true, "weight": percent},
        {"variant": "off", "value": false, "weight": 100 - percent}]}}})
}

pub fn user(key: &str) -> Context {
    json!({"targetingKey": key}).as_object().cloned().unwrap()
}

/// Whether `user` is inside `percent`.
pub fn inside(percent: u32, user: &Context) -> bool {
    let definition = lockstep_targeting::Definition::parse(X, &rollout(percent, "r")).unwrap();
    lockstep_targeting::evaluate(&definition, user, t("2026-12-01T00:00:00Z")).value == &json!(true)
}

/// The first user for whom `wanted(user)` holds.
pub fn find(wanted: impl Fn(&Context) -> bool) -> Context {
    (0..10_000)
        .map(|i| user(&format!("user-{i}")))
        .find(|u| wanted(u))
        .expect("such a user")
}
