//! The journey token's payload: [`Claims`] as bytes, compact so that a token for many public
//! flags with long names stays far below [`super::MAX_TOKEN_LEN`] (it travels in a header of
//! every feature call).
//!
//! Format `v2` (what this release issues), all integers LEB128 varints, signed ones zigzag:
//!
//! ```text
//! header      u8      bit 0: a profile stamp follows; bit 1: a subject follows
//! version     varint length, then that many UTF-8 bytes
//! profile     zigzag  the profile stamp, Unix ms (only with header bit 0)
//! issued      zigzag  the moment of issue, Unix ms
//! subject     8 bytes the caller's reference, big-endian (only with header bit 1): the first 8
//!                     bytes of SHA-256 of `lockstep subject:` and their targeting key
//! count       varint  the number of flags, then for each, by increasing reference:
//!   reference 8 bytes the first 8 bytes of SHA-256 of the flag's name, big-endian
//!   bits      u8      bit 0: the value; bit 1: a stamp follows
//!   stamp     zigzag  the stamp minus the profile stamp (or minus 0 without one), Unix ms
//! ```
//!
//! A flag is named by a digest of its name, not by an index: an instance reading the token may
//! hold another version (that is when a token matters), in which indexes would name other flags.
//! Names are public (they are `/config`'s keys), so the digest hides nothing and needs no key;
//! the token's HMAC covers the payload as before. Every byte must be accounted for: trailing
//! bytes, unknown bits, references out of order or repeated are not a token.
//!
//! Format `v1` (the previous release's: JSON with the names spelled out) is still read, so a
//! journey opened before an upgrade keeps its catch-up and drain.

use super::{Claims, TokenFlag, TokenFlags};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const HAS_PROFILE_STAMP: u8 = 1;
const HAS_SUBJECT: u8 = 2;
const VALUE: u8 = 1;
const HAS_STAMP: u8 = 2;

/// A flag's reference in a `v2` token: the first 8 bytes of SHA-256 of its name.
pub(super) fn reference(name: &str) -> u64 {
    let digest = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// A caller's reference in a `v2` token bound to them: the first 8 bytes of SHA-256 of
/// `lockstep subject:` and their targeting key (a reference, not the key: the token is opaque,
/// and the gate only compares it with the verified caller's).
pub(super) fn subject_reference(targeting_key: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(b"lockstep subject:");
    hasher.update(targeting_key.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The `v2` payload of `claims`.
pub(super) fn encode_v2(claims: &Claims) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + claims.version.len() + 14 * claims.flags.len());
    let mut header = 0;
    if claims.profile_stamp_ms.is_some() {
        header |= HAS_PROFILE_STAMP;
    }
    if claims.subject.is_some() {
        header |= HAS_SUBJECT;
    }
    out.push(header);
    put_varint(&mut out, claims.version.len() as u64);
    out.extend_from_slice(claims.version.as_bytes());
    if let Some(profile) = claims.profile_stamp_ms {
        put_varint(&mut out, zigzag(profile));
    }
    put_varint(&mut out, zigzag(claims.issued_at_ms));
    if let Some(subject) = claims.subject {
        out.extend_from_slice(&subject.to_be_bytes());
    }
    let base = claims.profile_stamp_ms.unwrap_or(0);
    put_varint(&mut out, claims.flags.0.len() as u64);
    for (reference, flag) in &claims.flags.0 {
        out.extend_from_slice(&reference.to_be_bytes());
        let mut bits = if flag.value { VALUE } else { 0 };
        if flag.stamp_ms.is_some() {
            bits |= HAS_STAMP;
        }
        out.push(bits);
        if let Some(stamp) = flag.stamp_ms {
            // Wrapping both ways: exact for every i64, small for stamps near the profile's.
            put_varint(&mut out, zigzag(stamp.wrapping_sub(base)));
        }
    }
    out
}

/// Claims from a `v2` payload; `None` for anything else. Never panics.
pub(super) fn decode_v2(bytes: &[u8]) -> Option<Claims> {
    let mut r = Reader(bytes);
    let header = r.byte()?;
    if header & !(HAS_PROFILE_STAMP | HAS_SUBJECT) != 0 {
        return None;
    }
    let version_len = usize::try_from(r.varint()?).ok()?;
    let version = String::from_utf8(r.take(version_len)?.to_vec()).ok()?;
    let profile_stamp_ms = if header & HAS_PROFILE_STAMP != 0 {
        Some(r.signed()?)
    } else {
        None
    };
    let issued_at_ms = r.signed()?;
    let subject = if header & HAS_SUBJECT != 0 {
        Some(u64::from_be_bytes(r.take(8)?.try_into().ok()?))
    } else {
        None
    };
    let base = profile_stamp_ms.unwrap_or(0);
    let count = r.varint()?;
    // Each flag takes at least 9 bytes: a count the rest cannot hold is not a token.
    if count > (r.0.len() / 9) as u64 {
        return None;
    }
    let mut flags = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let reference = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
        if flags
            .last()
            .is_some_and(|(last, _): &(u64, TokenFlag)| *last >= reference)
        {
            return None;
        }
        let bits = r.byte()?;
        if bits & !(VALUE | HAS_STAMP) != 0 {
            return None;
        }
        let stamp_ms = if bits & HAS_STAMP != 0 {
            Some(base.wrapping_add(r.signed()?))
        } else {
            None
        };
        flags.push((
            reference,
            TokenFlag {
                value: bits & VALUE != 0,
                stamp_ms,
            },
        ));
    }
    if !r.0.is_empty() {
        return None;
    }
    Some(Claims {
        version,
        profile_stamp_ms,
        issued_at_ms,
        subject,
        flags: TokenFlags(flags),
    })
}

/// The previous release's JSON payload.
#[derive(Deserialize)]
struct V1 {
    #[serde(rename = "c")]
    version: String,
    #[serde(rename = "p", default)]
    profile_stamp_ms: Option<i64>,
    #[serde(rename = "i")]
    issued_at_ms: i64,
    #[serde(rename = "f")]
    flags: BTreeMap<String, V1Flag>,
}

#[derive(Deserialize)]
struct V1Flag {
    #[serde(rename = "v")]
    value: bool,
    #[serde(rename = "t", default)]
    stamp_ms: Option<i64>,
}

/// Claims from a `v1` (JSON) payload; `None` for anything else.
pub(super) fn decode_v1(bytes: &[u8]) -> Option<Claims> {
    let v1: V1 = serde_json::from_slice(bytes).ok()?;
    Some(Claims {
        version: v1.version,
        profile_stamp_ms: v1.profile_stamp_ms,
        issued_at_ms: v1.issued_at_ms,
        subject: None,
        flags: v1
            .flags
            .into_iter()
            .map(|(name, f)| {
                (
                    name,
                    TokenFlag {
                        value: f.value,
                        stamp_ms: f.stamp_ms,
                    },
                )
            })
            .collect(),
    })
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a payload front to back; every read is `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(taken)
    }

    /// A LEB128 varint of at most 10 bytes whose value fits 64 bits.
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return None;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn signed(&mut self) -> Option<i64> {
        self.varint().map(unzigzag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn claims(flags: Vec<(String, bool, Option<i64>)>, profile: Option<i64>) -> Claims {
        Claims {
            version: "42".into(),
            profile_stamp_ms: profile,
            issued_at_ms: 1_763_719_260_000,
            subject: None,
            flags: flags
                .into_iter()
                .map(|(name, value, stamp_ms)| (name, TokenFlag { value, stamp_ms }))
                .collect(),
        }
    }

    #[test]
    fn varints_and_zigzag_round_trip_at_the_edges() {
        for v in [0, 1, -1, 63, -64, 64, i64::MIN, i64::MAX, 1_763_719_260_000] {
            let mut out = Vec::new();
            put_varint(&mut out, zigzag(v));
            assert!(out.len() <= 10);
            let mut r = Reader(&out);
            assert_eq!(r.signed(), Some(v));
            assert!(r.0.is_empty());
        }
        // Eleven bytes, or a tenth byte carrying more than bit 63, do not fit 64 bits.
        assert_eq!(Reader(&[0xff; 11]).varint(), None);
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert_eq!(Reader(&too_big).varint(), None);
    }

    #[test]
    fn a_payload_with_anything_unaccounted_for_is_not_a_token() {
        let good = encode_v2(&claims(vec![("a".into(), true, Some(5))], Some(9)));
        assert!(decode_v2(&good).is_some());
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode_v2(&trailing), None);
        let mut unknown_header = good.clone();
        unknown_header[0] |= 0x80;
        assert_eq!(decode_v2(&unknown_header), None);
        let mut unknown_bits = good.clone();
        let bits_at = good.len() - 2; // the flag's bits, then its one-byte stamp delta
        unknown_bits[bits_at] |= 0x10;
        assert_eq!(decode_v2(&unknown_bits), None);
        for cut in 0..good.len() {
            assert_eq!(decode_v2(&good[..cut]), None, "cut at {cut}");
        }
    }

    proptest! {
        #[test]
        fn claims_round_trip(
            flags in proptest::collection::btree_map("[a-zA-Z0-9_-]{1,64}", (any::<bool>(), proptest::option::of(any::<i64>())), 0..20),
            profile in proptest::option::of(any::<i64>()),
            subject in proptest::option::of(any::<u64>()),
        ) {
            let mut c = claims(flags.into_iter().map(|(n, (v, s))| (n, v, s)).collect(), profile);
            c.subject = subject;
            prop_assert_eq!(decode_v2(&encode_v2(&c)), Some(c));
        }

        #[test]
        fn decoding_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_v2(&raw);
            let _ = decode_v1(&raw);
        }
    }
}
