//! Packet time. All protocol and flow logic runs on capture timestamps, never on the wall clock, so
//! that replay is deterministic (see DESIGN.md, "Time").

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

/// Nanoseconds since the Unix epoch, taken from the capture (pcap record or kernel clock).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Builds a timestamp from seconds and nanoseconds.
    #[must_use]
    pub const fn from_parts(secs: u64, nanos: u32) -> Self {
        Self(secs.saturating_mul(1_000_000_000).saturating_add(nanos as u64))
    }

    /// Nanoseconds since the epoch.
    #[must_use]
    pub const fn nanos(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating.
    #[must_use]
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
    }

    /// Nanoseconds from `earlier` to `self`, or `None` when `earlier` is later.
    #[must_use]
    pub fn since(self, earlier: Self) -> Option<u64> {
        self.0.checked_sub(earlier.0)
    }

    /// The current wall-clock time (only for live capture clocks, never inside protocol logic).
    #[must_use]
    pub fn now() -> Self {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

impl Timestamp {
    /// RFC 3339 in UTC with microseconds, as Packetbeat writes `@timestamp`
    /// (e.g. `2024-01-02T03:04:05.123456Z`).
    #[must_use]
    pub fn rfc3339(self) -> String {
        String::from_utf8_lossy(&self.rfc3339_bytes()).into_owned()
    }

    /// [`Self::rfc3339`] as fixed bytes, written digit by digit (three of these per event made `fmt`
    /// machinery 6% of a replay's instructions) and without allocating.
    #[must_use]
    pub fn rfc3339_bytes(self) -> [u8; 27] {
        thread_local! {
            /// The last second formatted: an event's times (and consecutive events') share it, and
            /// the calendar arithmetic is most of the cost.
            static LAST: Cell<(u64, [u8; 27])> = const { Cell::new((u64::MAX, [0; 27])) };
        }
        let secs = self.0 / 1_000_000_000;
        let micros = (self.0 % 1_000_000_000) / 1_000;
        let mut out = LAST.with(|last| match last.get() {
            (s, bytes) if s == secs => bytes,
            _ => {
                let bytes = Self::second_bytes(secs);
                last.set((secs, bytes));
                bytes
            }
        });
        let mut v = micros;
        for slot in out[20..26].iter_mut().rev() {
            *slot = b'0' + u8::try_from(v % 10).unwrap_or(0);
            v /= 10;
        }
        out
    }

    /// `YYYY-MM-DDTHH:MM:SS.000000Z` of a second since the epoch.
    fn second_bytes(secs: u64) -> [u8; 27] {
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        let mut digits = |v: u64, at: usize, width: usize| {
            let mut v = v;
            for slot in out[at..at + width].iter_mut().rev() {
                *slot = b'0' + u8::try_from(v % 10).unwrap_or(0);
                v /= 10;
            }
        };
        digits(u64::try_from(y.clamp(0, 9999)).unwrap_or(0), 0, 4);
        digits(u64::from(m), 5, 2);
        digits(u64::from(d), 8, 2);
        digits(rem / 3600, 11, 2);
        digits((rem / 60) % 60, 14, 2);
        digits(rem % 60, 17, 2);
        out
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian, UTC).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_micros() {
        assert_eq!(Timestamp::from_parts(0, 0).to_string(), "1970-01-01T00:00:00.000000Z");
        assert_eq!(Timestamp::from_parts(1_700_000_000, 123_456_789).to_string(), "2023-11-14T22:13:20.123456Z");
        assert_eq!(Timestamp::from_parts(951_782_400, 0).to_string(), "2000-02-29T00:00:00.000000Z");
        assert_eq!(Timestamp::from_parts(4_102_444_799, 999_999_999).rfc3339(), "2099-12-31T23:59:59.999999Z");
    }
}
