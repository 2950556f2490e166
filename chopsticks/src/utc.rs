//! [`UtcTime`]: a moment as the calendar in UTC reads it, for names and
//! records (backups, the kit's journal) without a time-zone crate.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A moment as the proleptic Gregorian calendar in UTC reads it. Its
/// `Display` is ISO 8601 with milliseconds: `2026-12-07T08:13:19.123Z`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use chopsticks::UtcTime;
///
/// let t = UtcTime::of(UNIX_EPOCH + Duration::from_millis(951_782_400_250));
/// assert_eq!((t.year, t.month, t.day), (2000, 2, 29));
/// assert_eq!(t.to_string(), "2000-02-29T00:00:00.250Z");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    /// The year (1970 or later: times before the epoch read as the epoch).
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 to 59.
    pub second: u32,
    /// 0 to 999.
    pub millis: u32,
}

impl UtcTime {
    /// `time` in UTC.
    pub fn of(time: SystemTime) -> UtcTime {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (days, rest) = (secs / 86_400, secs % 86_400);
        // Howard Hinnant's civil_from_days.
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        // The casts hold: the values are within their ranges above.
        UtcTime {
            year,
            month: month as u32,
            day: day as u32,
            hour: (rest / 3600) as u32,
            minute: (rest % 3600 / 60) as u32,
            second: (rest % 60) as u32,
            millis: since.subsec_millis(),
        }
    }

    /// Now, in UTC.
    pub fn now() -> UtcTime {
        UtcTime::of(SystemTime::now())
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn calendar_dates_in_utc() {
        let at = |s: u64| UtcTime::of(UNIX_EPOCH + Duration::from_secs(s)).to_string();
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59.000Z");
        assert_eq!(at(1_796_631_199), "2026-12-07T08:13:19.000Z");
        assert_eq!(
            UtcTime::of(UNIX_EPOCH - Duration::from_secs(5)).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
