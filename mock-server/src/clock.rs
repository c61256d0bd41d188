//! The one source of time for everything time-dependent: token expiry,
//! rotation windows, rate windows and day boundaries.
//!
//! No other module reads the system clock. A clock follows the system time
//! shifted by an offset, or is frozen and moves only when told to; both can be
//! set and advanced, so tests move seven days forward in a microsecond.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where a clock keeps its time (the clock's part of the state interface):
/// the virtual offset and whether it is frozen. Reading is on every request
/// and never waits, so the calls are plain; a source shared by replicas keeps
/// a local copy current and publishes its changes.
pub trait TimeSource: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
    fn is_frozen(&self) -> bool;
    fn advance_ms(&self, ms: i64);
    fn set_ms(&self, at_ms: i64);
    fn set_frozen(&self, frozen: bool);
}

/// The clock every part of a mock reads.
#[derive(Debug, Clone)]
pub struct Clock {
    source: Arc<dyn TimeSource>,
}

/// The in-process time source: two atomics.
#[derive(Debug)]
pub struct LocalTime {
    frozen: AtomicBool,
    /// Frozen: the current time. Running: the offset from the system time.
    millis: AtomicI64,
}

fn system_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

impl Clock {
    /// Follows the system clock.
    pub fn system() -> Self {
        Self::from_source(LocalTime::new(false, 0))
    }

    /// Stands still at `at_ms` (milliseconds since the Unix epoch) until moved.
    pub fn frozen(at_ms: i64) -> Self {
        Self::from_source(LocalTime::new(true, at_ms))
    }

    /// Stands still at the current system time.
    pub fn frozen_now() -> Self {
        Self::frozen(system_ms())
    }

    /// A clock over another source of time (one shared by replicas).
    pub fn from_source(source: Arc<dyn TimeSource>) -> Self {
        Self { source }
    }

    pub fn is_frozen(&self) -> bool {
        self.source.is_frozen()
    }

    /// Milliseconds since the Unix epoch, on this clock.
    pub fn now_ms(&self) -> i64 {
        self.source.now_ms()
    }

    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Moves the clock forward (never backward, and never past the end of
    /// time: it stops at `i64::MAX`).
    pub fn advance_ms(&self, ms: i64) {
        self.source.advance_ms(ms);
    }

    /// Sets the current time, keeping the clock frozen or running as it was.
    pub fn set_ms(&self, at_ms: i64) {
        self.source.set_ms(at_ms);
    }

    /// Freezes or unfreezes at the current time.
    pub fn set_frozen(&self, frozen: bool) {
        self.source.set_frozen(frozen);
    }
}

impl LocalTime {
    /// A source in a given state: frozen at `millis`, or running at an
    /// offset of `millis` from the system time.
    pub fn new(frozen: bool, millis: i64) -> Arc<Self> {
        Arc::new(Self { frozen: AtomicBool::new(frozen), millis: AtomicI64::new(millis) })
    }

    /// The state as stored: (frozen, the time when frozen or the offset when running).
    pub fn raw(&self) -> (bool, i64) {
        (self.frozen.load(Ordering::Acquire), self.millis.load(Ordering::Acquire))
    }

    /// Takes on a stored state (a shared store's copy, read each request).
    pub fn load(&self, frozen: bool, millis: i64) {
        self.frozen.store(frozen, Ordering::Release);
        self.millis.store(millis, Ordering::Release);
    }
}

/// The system time in milliseconds since the Unix epoch (for a shared
/// store's clock scripts, which turn a time into an offset).
pub fn system_now_ms() -> i64 {
    system_ms()
}

impl TimeSource for LocalTime {
    fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }

    fn now_ms(&self) -> i64 {
        let m = self.millis.load(Ordering::Acquire);
        if self.is_frozen() {
            m
        } else {
            system_ms().saturating_add(m)
        }
    }

    fn advance_ms(&self, ms: i64) {
        let ms = ms.max(0);
        let _ = self.millis.fetch_update(Ordering::AcqRel, Ordering::Acquire, |m| Some(m.saturating_add(ms)));
    }

    fn set_ms(&self, at_ms: i64) {
        if self.is_frozen() {
            self.millis.store(at_ms, Ordering::Release);
        } else {
            self.millis.store(at_ms.saturating_sub(system_ms()), Ordering::Release);
        }
    }

    fn set_frozen(&self, frozen: bool) {
        let now = self.now_ms();
        self.frozen.store(frozen, Ordering::Release);
        self.set_ms(now);
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// (year, month, day) → days since 1970-01-01, the inverse of [`civil_from_days`].
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An instant as HighLevel writes it: `2026-01-01T00:00:00.000Z`.
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    if !(0..=9999).contains(&year) {
        return format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        );
    }
    // Every create and update stamps its record: digits written in place
    // (a `format!` of seven numbers showed in the profile of creation).
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut n: i64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, rem / 3600);
    put(14, 2, rem % 3600 / 60);
    put(17, 2, rem % 60);
    put(20, 3, millis);
    out.iter().map(|b| char::from(*b)).collect()
}

/// Reads an instant as clients send it: epoch milliseconds, or ISO 8601
/// (`2026-01-01T09:30:00Z`, `…T09:30:00.250+02:00`, or a bare date).
pub fn parse_instant_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    let num = |s: &str| -> Option<i64> { s.parse::<i64>().ok() };
    let (date, rest) = text.split_at(text.find('T').unwrap_or(text.len()));
    let mut d = date.splitn(3, '-');
    let (year, month, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let rest = rest.strip_prefix('T').unwrap_or(rest);
    let (time, offset_secs) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => {
            let (t, zone) = rest.split_at(i);
            let offset = if zone.eq_ignore_ascii_case("z") {
                0
            } else {
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                let mut hm = zone[1..].split(':');
                let h = num(hm.next()?)?;
                let m = hm.next().map_or(Some(0), num)?;
                sign * (h * 3600 + m * 60)
            };
            (t, offset)
        }
        None => (rest, 0),
    };
    let mut t = time.split(':');
    let hour = t.next().filter(|s| !s.is_empty()).map_or(Some(0), num)?;
    let minute = t.next().map_or(Some(0), num)?;
    let (second, millis) = match t.next() {
        Some(s) => match s.split_once('.') {
            Some((whole, frac)) => (num(whole)?, num(&format!("{frac:0<3}")[..3])?),
            None => (num(s)?, 0),
        },
        None => (0, 0),
    };
    let days = days_from_civil(year, month, day);
    let secs = days.checked_mul(86_400)? + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(1000)?.checked_add(millis)
}

/// Parses `7d`, `10s`, `1h30m`, `250ms`, or a plain number of seconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if text.starts_with('-') {
        return Err(format!("duration '{text}' is negative; the clock only moves forward"));
    }
    if let Ok(secs) = text.parse::<i64>() {
        return secs.checked_mul(1000).ok_or_else(|| format!("duration '{text}' is too large"));
    }
    // Numbers each followed by a unit: 1h30m, 7d, 250ms, 2days, 1 hour 30 minutes.
    const UNITS: &[(&str, i64)] = &[
        ("ms", 1),
        ("millisecond", 1),
        ("milliseconds", 1),
        ("s", 1_000),
        ("sec", 1_000),
        ("secs", 1_000),
        ("second", 1_000),
        ("seconds", 1_000),
        ("m", 60_000),
        ("min", 60_000),
        ("mins", 60_000),
        ("minute", 60_000),
        ("minutes", 60_000),
        ("h", 3_600_000),
        ("hr", 3_600_000),
        ("hrs", 3_600_000),
        ("hour", 3_600_000),
        ("hours", 3_600_000),
        ("d", 86_400_000),
        ("day", 86_400_000),
        ("days", 86_400_000),
        ("w", 7 * 86_400_000),
        ("week", 7 * 86_400_000),
        ("weeks", 7 * 86_400_000),
    ];
    let mut total: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (digits, after) = rest.split_at(digits_end);
        let after = after.trim_start();
        let unit_end = after.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        if digits.is_empty() {
            return Err(format!("duration '{text}': a unit needs a number before it"));
        }
        if unit.is_empty() {
            return Err(match after.chars().next() {
                Some(c) => format!("duration '{text}': unknown unit '{c}' (use d, h, m, s, ms)"),
                None => format!("duration '{text}': trailing number without a unit"),
            });
        }
        let Some((_, unit_ms)) = UNITS.iter().find(|(name, _)| name.eq_ignore_ascii_case(unit)) else {
            let hint = crate::suggest::hint(unit, UNITS.iter().map(|(name, _)| *name));
            return Err(format!("duration '{text}': unknown unit '{unit}'{hint} (use d, h, m, s, ms)"));
        };
        let n: i64 = digits.parse().map_err(|_| format!("duration '{text}' is too large"))?;
        total = n
            .checked_mul(*unit_ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration '{text}' is too large"))?;
        rest = after.trim_start();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_moves_only_when_advanced() {
        let c = Clock::frozen(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance_ms(7 * 86_400_000);
        assert_eq!(c.now_ms(), 1_000 + 7 * 86_400_000);
        c.set_ms(5);
        assert_eq!(c.now_ms(), 5);
    }

    #[test]
    fn instants_print_as_iso_8601_in_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_767_225_600_000), "2026-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso8601(1_798_761_599_042), "2026-12-31T23:59:59.042Z");
        assert_eq!(iso8601(253_402_300_800_000), "10000-01-01T00:00:00.000Z", "past year 9999: all digits");
        for ms in [0, 1_767_225_600_000, 951_782_400_123, 1_780_000_123_456] {
            assert_eq!(parse_instant_ms(&iso8601(ms)), Some(ms));
        }
        assert_eq!(parse_instant_ms("2026-01-01T02:00:00+02:00"), Some(1_767_225_600_000));
        assert_eq!(parse_instant_ms("2026-01-01"), Some(1_767_225_600_000));
        assert_eq!(parse_instant_ms("1767225600000"), Some(1_767_225_600_000));
        assert_eq!(parse_instant_ms("yesterday"), None);
    }

    #[test]
    fn durations_parse_in_the_units_people_type() {
        assert_eq!(parse_duration_ms("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("10"), Ok(10_000));
        assert!(parse_duration_ms("-5s").is_err());
        assert!(parse_duration_ms("5x").is_err());
        assert!(parse_duration_ms("99999999999999999d").is_err());
        assert_eq!(parse_duration_ms("7days"), Ok(7 * 86_400_000));
        assert_eq!(parse_duration_ms("1 hour 30 minutes"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("2w"), Ok(14 * 86_400_000));
        assert!(parse_duration_ms("30").is_ok() && parse_duration_ms("30 ").is_ok());
        assert!(parse_duration_ms("h").is_err() && parse_duration_ms("5m3").is_err());
    }

    #[test]
    fn a_mistyped_duration_unit_is_named_with_the_unit_it_was_meant_to_be() {
        let e = parse_duration_ms("7dayz").unwrap_err();
        assert!(e.contains("unknown unit 'dayz'") && e.contains("did you mean 'day"), "{e}");
        let e = parse_duration_ms("10secnds").unwrap_err();
        assert!(e.contains("did you mean 'seconds'"), "{e}");
        let e = parse_duration_ms("5x").unwrap_err();
        assert!(e.contains("unknown unit 'x'") && !e.contains("did you mean"), "{e}");
    }
}
