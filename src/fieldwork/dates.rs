//! Interview dates: ISO 8601 calendar dates, and the returns received per date.

use std::fmt;

/// A calendar date (proleptic Gregorian), stored as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i64);

impl Date {
    /// Parse `YYYY-MM-DD` (an ISO 8601 date; a time after `T` or a space is ignored). `None`
    /// for anything else, or a day the calendar does not have (`2026-02-30`).
    pub fn parse(text: &str) -> Option<Date> {
        let text = text.trim();
        let day_part = match text.find(['T', ' ']) {
            Some(at) => &text[..at],
            None => text,
        };
        let bytes = day_part.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let digits = |s: &str| -> Option<i64> {
            s.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| s.parse().ok())
                .flatten()
        };
        let (y, m, d) = (
            digits(&day_part[..4])?,
            digits(&day_part[5..7])?,
            digits(&day_part[8..])?,
        );
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_days = match m {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (1..=month_days)
            .contains(&d)
            .then(|| Date(days_from_civil(y, m, d)))
    }

    /// The date of Unix time `secs` (UTC).
    pub fn from_unix(secs: i64) -> Date {
        Date(secs.div_euclid(86_400))
    }

    /// Today (UTC) by the system clock.
    pub fn today() -> Date {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Date::from_unix(secs)
    }
}

/// Days since 1970-01-01 of a civil date (Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hinnant's civil_from_days.
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// The returns carrying one interview date.
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnsOnDate {
    /// The date.
    pub date: Date,
    /// Cases with this date.
    pub returns: usize,
    /// Of which respondents.
    pub respondents: usize,
}

/// Returns per interview date, in date order; cases without a date are not counted.
pub fn returns_by_date(dates: &[Option<Date>], respondent: &[bool]) -> Vec<ReturnsOnDate> {
    let mut by: std::collections::BTreeMap<Date, (usize, usize)> = Default::default();
    for (d, &resp) in dates.iter().zip(respondent) {
        if let Some(d) = d {
            let e = by.entry(*d).or_default();
            e.0 += 1;
            e.1 += usize::from(resp);
        }
    }
    by.into_iter()
        .map(|(date, (returns, respondents))| ReturnsOnDate {
            date,
            returns,
            respondents,
        })
        .collect()
}
