//! RFC 3339 timestamps in serialised bodies (`#[serde(serialize_with = ...)]`), written digit
//! by digit: the same text as chrono's `Serialize` (`SecondsFormat::AutoSi`, `Z`), without
//! chrono's `fmt` path, which serde_json then escapes piece by piece. On `/config` that path was
//! about half of the handler's instructions (BENCHMARKS.md). Anything outside years 0–9999, or a
//! leap second, goes to chrono.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// `YYYY-MM-DDTHH:MM:SS.fffffffffZ` at most.
const MAX_LEN: usize = 30;

/// `at` as chrono serialises it, or `None` when only chrono knows (a year outside 0–9999, a
/// leap second).
fn format(at: &DateTime<Utc>, buf: &mut [u8; MAX_LEN]) -> Option<usize> {
    let t = at.naive_utc();
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut w = Writer { buf, len: 0 };
    w.digits(year, 4);
    w.byte(b'-');
    w.digits(t.month(), 2);
    w.byte(b'-');
    w.digits(t.day(), 2);
    w.byte(b'T');
    w.digits(t.hour(), 2);
    w.byte(b':');
    w.digits(t.minute(), 2);
    w.byte(b':');
    w.digits(t.second(), 2);
    // AutoSi: no fraction, or milli-, micro- or nanoseconds, the fewest digits that are exact.
    if nanos != 0 {
        w.byte(b'.');
        if nanos.is_multiple_of(1_000_000) {
            w.digits(nanos / 1_000_000, 3);
        } else if nanos.is_multiple_of(1_000) {
            w.digits(nanos / 1_000, 6);
        } else {
            w.digits(nanos, 9);
        }
    }
    w.byte(b'Z');
    Some(w.len)
}

struct Writer<'a> {
    buf: &'a mut [u8; MAX_LEN],
    len: usize,
}

impl Writer<'_> {
    fn byte(&mut self, c: u8) {
        self.buf[self.len] = c;
        self.len += 1;
    }

    /// `value`'s last `n` decimal digits, zero-padded.
    fn digits(&mut self, value: u32, n: u32) {
        for i in (0..n).rev() {
            self.byte(b'0' + (value / 10u32.pow(i) % 10) as u8);
        }
    }
}

/// Serialises `at` as chrono does (`#[serde(serialize_with = "rfc3339::serialize")]`).
pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; MAX_LEN];
    match format(at, &mut buf) {
        Some(len) => serializer
            .serialize_str(std::str::from_utf8(&buf[..len]).expect("the formatter writes ASCII")),
        None => at.serialize(serializer),
    }
}

/// Appends `at` as the JSON string [`serialize`] gives (quoted), without a serializer: for the
/// bodies written as text ([`crate::json_text`]).
pub fn push_json(out: &mut String, at: &DateTime<Utc>) {
    let mut buf = [0u8; MAX_LEN];
    match format(at, &mut buf) {
        Some(len) => {
            out.push('"');
            out.push_str(std::str::from_utf8(&buf[..len]).expect("the formatter writes ASCII"));
            out.push('"');
        }
        None => out.push_str(&serde_json::to_string(at).expect("chrono serialises every moment")),
    }
}

/// [`serialize`] for an optional moment: `null` when none, as serde does.
pub fn serialize_opt<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serialize(at, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn ours(at: &DateTime<Utc>) -> String {
        serialize(at, serde_json::value::Serializer)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn chronos(at: &DateTime<Utc>) -> String {
        serde_json::to_value(at)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn the_edges_read_as_chrono_writes_them() {
        let whole = Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 50).unwrap();
        for at in [
            whole,
            whole + chrono::TimeDelta::milliseconds(7),
            whole + chrono::TimeDelta::microseconds(7),
            whole + chrono::TimeDelta::nanoseconds(7),
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap(),
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
        ] {
            assert_eq!(ours(&at), chronos(&at));
            let mut pushed = String::new();
            push_json(&mut pushed, &at);
            assert_eq!(pushed, serde_json::to_string(&at).unwrap());
        }
        assert_eq!(ours(&whole), "2026-11-21T10:00:50Z");
        let none: Option<DateTime<Utc>> = None;
        assert_eq!(
            serialize_opt(&none, serde_json::value::Serializer).unwrap(),
            serde_json::Value::Null
        );
    }

    proptest! {
        #[test]
        fn every_moment_reads_as_chrono_writes_it(
            secs in -70_000_000_000i64..300_000_000_000,
            nanos in prop_oneof![Just(0u32), (0u32..1000).prop_map(|m| m * 1_000_000), (0u32..1_000_000).prop_map(|u| u * 1000), 0u32..2_000_000_000],
        ) {
            if let Some(at) = DateTime::<Utc>::from_timestamp(secs, nanos) {
                prop_assert_eq!(ours(&at), chronos(&at));
                let mut pushed = String::new();
                push_json(&mut pushed, &at);
                prop_assert_eq!(pushed, serde_json::to_string(&at).unwrap());
            }
        }
    }
}
