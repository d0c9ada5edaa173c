//! The evaluator per call (issue 20's benchmark row): a flag with three rules that do not match
//! the caller (every condition is tested) and a 25 % split, from bench/targeted.json, whose
//! Powertools twin `bench/python/powertools_bench.py` times with `FeatureFlags.evaluate`.

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use lockstep_targeting::{evaluate, Context, Definition, Reason};
use serde_json::Value;
use std::hint::black_box;

fn targeted(c: &mut Criterion) {
    let fixture: Value =
        serde_json::from_str(include_str!("../../../bench/targeted.json")).expect("JSON");
    let definition = Definition::parse("checkout_v2", &fixture["lockstep"]).expect("valid");
    let context: Context = fixture["context"].as_object().cloned().expect("an object");
    let now: DateTime<Utc> = "2026-12-06T10:00:00Z".parse().expect("a time");
    assert_eq!(evaluate(&definition, &context, now).reason, Reason::Split);
    c.bench_function("evaluate a flag with 3 rules and a split", |b| {
        b.iter(|| evaluate(black_box(&definition), black_box(&context), now).reason)
    });
}

criterion_group!(benches, targeted);
criterion_main!(benches);
