//! The time-based actions' operands, parsed once: `SCHEDULE_BETWEEN_TIME_RANGE` (`HH:MM` to
//! `HH:MM`, crossing midnight when the end is earlier), `SCHEDULE_BETWEEN_DATETIME_RANGE` (two
//! local date-times without offset) and `SCHEDULE_BETWEEN_DAYS_OF_WEEK`, each in an IANA time zone
//! (`TIMEZONE`, UTC when absent or empty).
//!
//! As in Powertools, every comparison is on the wall clock of that zone, inclusive at both ends,
//! and a time range compares whole minutes (Powertools puts `HH:MM` on today's date with the
//! current seconds, so `10:00`–`11:00` still matches at 11:00:59).
//!
//! *Choices* where Powertools' Python is looser (docs/targeting.md;
//! tests/powertools_differential.rs checks each against Powertools):
//! - A missing, null or empty `TIMEZONE` is UTC. Powertools (dateutil's `gettz`) takes the
//!   process's zone for those, and for `false` and `0`: UTC on Lambda (`TZ=:UTC`), whatever a
//!   laptop says elsewhere. A `TIMEZONE` that is neither a string nor null is refused.
//! - `HH:MM` is written in ASCII digits: Python's `\d` and `int` also read `1٣:0٥`.
//! - A date-time is `YYYY-MM-DD`, optionally `THH:MM`, `:SS` and a fraction: Python's
//!   `fromisoformat` also reads a space for the `T`, the basic format (`20261224T180000`), an hour
//!   alone (`2026-12-24T18`) and week dates, which are refused here. A fraction is read to the
//!   nanosecond, where Python truncates it to the microsecond (only a bound with more than six
//!   fraction digits can tell).
//! - `DAYS` holds day names only: Powertools' list also admits `"DAYS"` ([`DAY_NAMES`]).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc, Weekday};
use serde_json::{Map, Value};

/// `SCHEDULE_BETWEEN_TIME_RANGE`'s operand: minutes since midnight, and the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeRange {
    start: u16,
    end: u16,
    zone: Zone,
}

/// `SCHEDULE_BETWEEN_DATETIME_RANGE`'s operand: two wall-clock instants, and the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateTimeRange {
    start: NaiveDateTime,
    end: NaiveDateTime,
    zone: Zone,
}

/// `SCHEDULE_BETWEEN_DAYS_OF_WEEK`'s operand: one bit per weekday (Sunday = bit 0), and the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Days {
    mask: u8,
    zone: Zone,
}

/// The day names `DAYS` may hold, Sunday first. *Choice*: Powertools' own list also admits
/// `"DAYS"`, an accident of its enum; it never matches a day, so it is refused here.
pub const DAY_NAMES: [&str; 7] = [
    "SUNDAY",
    "MONDAY",
    "TUESDAY",
    "WEDNESDAY",
    "THURSDAY",
    "FRIDAY",
    "SATURDAY",
];

/// An IANA time zone, from the time zone database compiled in (`jiff`'s bundled copy: a
/// Lambda's runtime image does not promise /usr/share/zoneinfo). Its name is matched exactly, as
/// the database spells it (`Europe/Berlin`, not `europe/berlin`; links such as `US/Eastern`
/// included).
#[derive(Debug, Clone)]
pub struct Zone {
    zone: jiff::tz::TimeZone,
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.zone.iana_name() == other.zone.iana_name()
    }
}

impl Eq for Zone {}

impl Zone {
    fn utc() -> Self {
        Self {
            zone: jiff::tz::TimeZone::UTC,
        }
    }

    fn named(name: &str) -> Option<Self> {
        let zone = jiff::tz::TimeZone::get(name).ok()?;
        (zone.iana_name() == Some(name)).then_some(Self { zone })
    }

    /// `now` on this zone's wall clock.
    pub fn local(&self, now: DateTime<Utc>) -> NaiveDateTime {
        let instant = jiff::Timestamp::new(now.timestamp(), now.timestamp_subsec_nanos() as i32)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let civil = self.zone.to_datetime(instant);
        NaiveDate::from_ymd_opt(
            i32::from(civil.year()),
            civil.month() as u32,
            civil.day() as u32,
        )
        .and_then(|date| {
            date.and_hms_nano_opt(
                civil.hour() as u32,
                civil.minute() as u32,
                civil.second() as u32,
                civil.subsec_nanosecond() as u32,
            )
        })
        .unwrap_or_default()
    }

    /// The instant this zone's wall clock reads `local` (in a gap, the instant just after it;
    /// in a fold, the earlier one: jiff's "compatible" choice, as RFC 5545 has it).
    pub fn instant(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        let civil = jiff::civil::DateTime::new(
            i16::try_from(local.year()).ok()?,
            i8::try_from(local.month()).ok()?,
            i8::try_from(local.day()).ok()?,
            i8::try_from(local.hour()).ok()?,
            i8::try_from(local.minute()).ok()?,
            i8::try_from(local.second()).ok()?,
            i32::try_from(local.nanosecond()).ok()?,
        )
        .ok()?;
        let at = self.zone.to_ambiguous_timestamp(civil).compatible().ok()?;
        DateTime::from_timestamp(at.as_second(), u32::try_from(at.subsec_nanosecond()).ok()?)
    }

    /// The earliest of the instants at which this zone's wall clock reads one of `minutes`
    /// (minutes since midnight) on the days around `now`, after `now`.
    fn next_minute_of_day(&self, now: DateTime<Utc>, minutes: &[u16]) -> Option<DateTime<Utc>> {
        let today = self.local(now).date();
        (-1..=2)
            .filter_map(|offset| today.checked_add_signed(chrono::TimeDelta::days(offset)))
            .flat_map(|day| {
                minutes
                    .iter()
                    .filter_map(move |m| day.and_hms_opt(u32::from(m / 60), u32::from(m % 60), 0))
            })
            .filter_map(|local| self.instant(local))
            .filter(|at| *at > now)
            .min()
    }
}

impl TimeRange {
    /// The next instant after `now` at which the range is entered or left: its first minute,
    /// or the minute after its last (`crate::changes`).
    pub fn next_boundary(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.zone
            .next_minute_of_day(now, &[self.start, (self.end + 1) % (24 * 60)])
    }

    /// Parses `{"START": "HH:MM", "END": "HH:MM", "TIMEZONE"?}`.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let fields = object(value, "a dictionary with 'START' and 'END' keys")?;
        let minutes = |field: &str| {
            fields
                .get(field)
                .and_then(Value::as_str)
                .and_then(parse_hh_mm)
                .ok_or_else(|| {
                    "'START' and 'END' must be times HH:MM on a 24-hour clock".to_owned()
                })
        };
        Ok(Self {
            start: minutes("START")?,
            end: minutes("END")?,
            zone: zone(fields)?,
        })
    }

    /// Whether `now`, on this zone's wall clock, is within the range.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let local = self.zone.local(now);
        let minute = (local.hour() * 60 + local.minute()) as u16;
        if self.end < self.start {
            // Crossing midnight: either side of it.
            self.start <= minute || minute <= self.end
        } else {
            self.start <= minute && minute <= self.end
        }
    }
}

impl DateTimeRange {
    /// Parses `{"START": "YYYY-MM-DDTHH:MM:SS", "END": …, "TIMEZONE"?}`; a date alone means its
    /// midnight, seconds and a fraction are optional; an offset or `Z` is refused (the zone is
    /// `TIMEZONE`'s).
    pub fn parse(value: &Value) -> Result<Self, String> {
        let fields = object(value, "a dictionary with 'START' and 'END' keys")?;
        let instant = |field: &str| match fields.get(field) {
            Some(Value::String(text)) => parse_local_datetime(text),
            _ => Err("'START' and 'END' must be non-empty strings".to_owned()),
        };
        Ok(Self {
            start: instant("START")?,
            end: instant("END")?,
            zone: zone(fields)?,
        })
    }

    /// Whether `now`, on this zone's wall clock, is within the range.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let local = self.zone.local(now);
        self.start <= local && local <= self.end
    }
}

impl DateTimeRange {
    /// The next instant after `now` at which the range is entered or left: its start, or the
    /// nanosecond after its end (`crate::changes`).
    pub fn next_boundary(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let after_end = self.end + chrono::TimeDelta::nanoseconds(1);
        [self.start, after_end]
            .into_iter()
            .filter_map(|local| self.zone.instant(local))
            .filter(|at| *at > now)
            .min()
    }
}

impl Days {
    /// The next midnight after `now` in the zone, where the weekday changes
    /// (`crate::changes`).
    pub fn next_boundary(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.zone.next_minute_of_day(now, &[0])
    }

    /// Parses `{"DAYS": ["MONDAY", …], "TIMEZONE"?}`.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let fields = object(
            value,
            "a dictionary with 'DAYS' and 'TIMEZONE' (optional) keys",
        )?;
        let Some(Value::Array(days)) = fields.get("DAYS") else {
            return Err("'DAYS' must be a list of day names".to_owned());
        };
        let mut mask = 0u8;
        for day in days {
            let index = day
                .as_str()
                .and_then(|name| DAY_NAMES.iter().position(|d| *d == name))
                .ok_or_else(|| format!("'DAYS' must hold day names {DAY_NAMES:?}, got {day}"))?;
            mask |= 1 << index;
        }
        Ok(Self {
            mask,
            zone: zone(fields)?,
        })
    }

    /// Whether `now`'s weekday, in this zone, is one of the days.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let weekday: Weekday = self.zone.local(now).weekday();
        self.mask & (1 << weekday.num_days_from_sunday()) != 0
    }
}

fn object<'v>(value: &'v Value, shape: &str) -> Result<&'v Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("the value must be {shape}"))
}

/// `TIMEZONE`: an IANA name; absent, null or empty means UTC (*Choice*: Powertools reads the
/// process's zone, UTC on Lambda; see the module doc).
fn zone(fields: &Map<String, Value>) -> Result<Zone, String> {
    match fields.get("TIMEZONE") {
        None | Some(Value::Null) => Ok(Zone::utc()),
        Some(Value::String(name)) if name.is_empty() => Ok(Zone::utc()),
        Some(Value::String(name)) => {
            Zone::named(name).ok_or_else(|| format!("'TIMEZONE' {name:?} is not an IANA time zone"))
        }
        Some(_) => Err("'TIMEZONE' must be a string".to_owned()),
    }
}

/// `HH:MM`, exactly two digits each, 00:00 to 23:59 (Powertools' pattern; *Choice*: ASCII
/// digits only).
fn parse_hh_mm(text: &str) -> Option<u16> {
    let bytes = text.as_bytes();
    if bytes.len() != 5 || bytes[2] != b':' {
        return None;
    }
    let digits = |i: usize| -> Option<u16> {
        let (a, b) = (bytes[i], bytes[i + 1]);
        (a.is_ascii_digit() && b.is_ascii_digit())
            .then(|| u16::from(a - b'0') * 10 + u16::from(b - b'0'))
    };
    let (hour, minute) = (digits(0)?, digits(3)?);
    (hour < 24 && minute < 60).then_some(hour * 60 + minute)
}

/// A local date-time without offset: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM`, `YYYY-MM-DDTHH:MM:SS`, with
/// an optional fraction of a second (*Choice*: a subset of what Python's `fromisoformat` reads,
/// and the fraction read to the nanosecond; see the module doc).
fn parse_local_datetime(text: &str) -> Result<NaiveDateTime, String> {
    if text.ends_with('Z') || text.get(10..).is_some_and(|time| time.contains(['+', '-'])) {
        return Err(format!(
            "{text:?} includes a time zone offset: write the wall-clock time and set 'TIMEZONE'"
        ));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .or_else(|_| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
        })
        .map_err(|_| format!("{text:?} is not a date-time YYYY-MM-DD[THH:MM[:SS[.fraction]]]"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_time_range_includes_its_whole_last_minute() {
        let range = TimeRange::parse(&json!({"START": "10:00", "END": "11:00"})).unwrap();
        assert!(range.contains(at("2026-12-06T11:00:59Z")));
        assert!(!range.contains(at("2026-12-06T11:01:00Z")));
        assert!(!range.contains(at("2026-12-06T09:59:59Z")));
    }

    #[test]
    fn a_time_range_whose_end_is_earlier_crosses_midnight() {
        let range = TimeRange::parse(&json!({"START": "23:30", "END": "23:00"})).unwrap();
        assert!(range.contains(at("2026-12-06T23:45:00Z")));
        assert!(range.contains(at("2026-12-06T12:00:00Z")));
        assert!(!range.contains(at("2026-12-06T23:15:00Z")));
    }

    #[test]
    fn a_time_range_reads_the_wall_clock_of_its_zone() {
        let range = TimeRange::parse(
            &json!({"START": "09:00", "END": "17:00", "TIMEZONE": "Europe/Berlin"}),
        )
        .unwrap();
        // 08:30 UTC is 09:30 in Berlin in winter.
        assert!(range.contains(at("2026-12-07T08:30:00Z")));
        assert!(!range.contains(at("2026-12-07T16:30:00Z")));
    }

    #[test]
    fn bad_times_and_zones_are_refused() {
        for bad in [
            json!({"START": "9:00", "END": "17:00"}),
            json!({"START": "24:00", "END": "17:00"}),
            json!({"START": "09:00"}),
            json!({"START": "09:00", "END": "10:00", "TIMEZONE": "Mars/Olympus"}),
            json!({"START": "09:00", "END": "10:00", "TIMEZONE": 1}),
            // Choices: Powertools reads these two (the process's zone; Unicode digits).
            json!({"START": "09:00", "END": "10:00", "TIMEZONE": false}),
            json!({"START": "1٣:00", "END": "17:00"}),
            json!(["09:00", "10:00"]),
        ] {
            assert!(TimeRange::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_datetime_range_is_inclusive_and_local_to_its_zone() {
        let range = DateTimeRange::parse(&json!({
            "START": "2026-12-24T18:00:00", "END": "2026-12-26", "TIMEZONE": "America/New_York"
        }))
        .unwrap();
        assert!(range.contains(at("2026-12-24T23:00:00Z")));
        assert!(!range.contains(at("2026-12-24T22:59:59Z")));
        assert!(range.contains(at("2026-12-26T05:00:00Z")));
        assert!(!range.contains(at("2026-12-26T05:00:01Z")));
    }

    #[test]
    fn a_datetime_with_an_offset_or_outside_the_subset_is_refused() {
        for bad in [
            "2026-12-24T18:00:00Z",
            "2026-12-24T18:00:00+01:00",
            "24.12.2026",
            "",
            // Choices: Python's fromisoformat reads these.
            "2026-12-24 18:00:00",
            "20261224T180000",
            "2026-12-24T18",
        ] {
            let value = json!({"START": bad, "END": "2026-12-26"});
            assert!(DateTimeRange::parse(&value).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_of_week_are_days_in_the_zone() {
        let days =
            Days::parse(&json!({"DAYS": ["SATURDAY", "SUNDAY"], "TIMEZONE": "Pacific/Auckland"}))
                .unwrap();
        // Friday 2026-12-04 12:00 UTC is Saturday 01:00 in Auckland.
        assert!(days.contains(at("2026-12-04T12:00:00Z")));
        assert!(!days.contains(at("2026-12-04T10:00:00Z")));
        assert!(Days::parse(&json!({"DAYS": ["DAYS"]})).is_err());
        assert!(Days::parse(&json!({"DAYS": "MONDAY"})).is_err());
    }
}
