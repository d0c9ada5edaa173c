//! flagd-testbed's published `fractional` (v2) vectors, reproduced bit for bit: the fixture holds
//! the vectors, the flags written as Lockstep splits, and where they come from.

use chrono::Utc;
use lockstep_targeting::{evaluate, Context, Definition, Reason};
use serde_json::Value;

#[test]
fn every_flagd_testbed_fractional_v2_vector_lands_in_the_published_bucket() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/flagd-fractional-v2.json")).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 21, "the fixture's vector count");
    for case in cases {
        let flag = case["flag"].as_str().unwrap();
        let definition = Definition::parse(flag, &fixture["flags"][flag]).unwrap();
        let context: Context = case["context"].as_object().cloned().unwrap();
        let answer = evaluate(&definition, &context, Utc::now());
        assert_eq!(answer.value, &case["value"], "{case}");
        assert_eq!(answer.reason, Reason::Split, "{case}");
    }
}

#[test]
fn the_hash_edge_keys_fall_at_the_boundaries_the_testbed_chose_them_for() {
    // fractional.feature: "keys chosen by brute-force search so their MurmurHash3-x86-32
    // (seed=0) falls at the six critical boundary values". With weights 50/50 the boundary is
    // 2^31: the lower keys hash below it, the upper ones at or above.
    use lockstep_targeting::split::murmur3_x86_32;
    for key in ["ejOoVL", "bY9fO-", "SI7p-"] {
        assert!(murmur3_x86_32(&[key]) < 1 << 31, "{key}");
    }
    for key in ["6LvT0", "ceQdGm"] {
        assert!(murmur3_x86_32(&[key]) >= 1 << 31, "{key}");
    }
}
