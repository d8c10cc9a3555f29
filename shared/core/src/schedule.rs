//! Drill schedules in EventBridge Scheduler's syntax, in Belgian time:
//! `rate(30 minutes)`, `rate(1 day)`, or `cron(minutes hours
//! day-of-month month day-of-week year)` — six fields, one of the two days
//! `?`; `*`, lists, ranges, `/` steps, month and day names (`JAN`, `MON`;
//! day-of-week 1 = Sunday), `L` (the last day of the month, or `6L` its
//! last Friday) and `#` (`2#1`, its first Monday). `W` is refused. The
//! same string is the schedule of the AWS home's EventBridge schedule
//! (time zone Europe/Brussels); the embedded home computes the next run
//! with [`Schedule::next_after`].

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every so many milliseconds, from when the drill was made.
    Rate(i64),
    Cron(Box<Cron>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    months: Vec<bool>,
    days: Days,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Days {
    /// Day-of-month values (1..=31), or the last day.
    OfMonth { days: Vec<bool>, last: bool },
    /// Day-of-week (1 = Sunday ..= 7), `nL` (last in the month) or `n#k`.
    OfWeek {
        days: Vec<bool>,
        last: Vec<u8>,
        nth: Vec<(u8, u8)>,
    },
}

/// The longest rate: ten years of days (a drill that never comes is no drill).
pub const MAX_RATE_MS: i64 = 3660 * 86_400_000;

fn unit_name(unit_ms: i64) -> &'static str {
    match unit_ms {
        60_000 => "minutes",
        3_600_000 => "hours",
        _ => "days",
    }
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn value(s: &str, names: &[&str], first: u8, lo: u8, hi: u8) -> Result<u8, String> {
    let v = match names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        Some(i) => first + i as u8,
        None => s
            .parse::<u8>()
            .map_err(|_| format!("{s:?} is not a number or name"))?,
    };
    if v < lo || v > hi {
        return Err(format!("{v} is outside {lo}-{hi}"));
    }
    Ok(v)
}

/// `*`, `a`, `a-b`, `*/n`, `a/n`, `a-b/n`, comma-separated.
fn field(s: &str, names: &[&str], first: u8, lo: u8, hi: u8) -> Result<Vec<bool>, String> {
    let mut set = vec![false; usize::from(hi) + 1];
    for item in s.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, st)) => (
                r,
                st.parse::<u8>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("step {st:?} is not a positive number"))?,
            ),
            None => (item, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                value(a, names, first, lo, hi)?,
                value(b, names, first, lo, hi)?,
            )
        } else {
            let a = value(range, names, first, lo, hi)?;
            (a, if item.contains('/') { hi } else { a })
        };
        if a > b {
            return Err(format!("the range {range:?} runs backwards"));
        }
        let mut v = a;
        while v <= b {
            set[usize::from(v)] = true;
            v = v.saturating_add(step);
            if step == 0 {
                break;
            }
        }
    }
    Ok(set)
}

impl Schedule {
    /// Parses a schedule; the error says what to fix.
    pub fn parse(s: &str) -> Result<Schedule, String> {
        let s = s.trim();
        if let Some(inner) = s.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            let (n, unit) = inner
                .trim()
                .split_once(' ')
                .ok_or("rate(...) takes a number and a unit, e.g. rate(1 day)")?;
            let n: i64 = n
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or("rate(...) takes a positive whole number")?;
            let unit = match (n, unit.trim()) {
                (1, "minute") | (2.., "minutes") => 60_000,
                (1, "hour") | (2.., "hours") => 3_600_000,
                (1, "day") | (2.., "days") => 86_400_000,
                _ => {
                    return Err(format!(
                        "{unit:?}: use minute(s), hour(s) or day(s), singular for 1 (rate(1 hour), rate(5 minutes))"
                    ));
                }
            };
            let every = n
                .checked_mul(unit)
                .filter(|ms| *ms <= MAX_RATE_MS)
                .ok_or_else(|| {
                    format!(
                        "rate({n} {}) is too long: a drill runs at least once every {} days",
                        unit_name(unit),
                        MAX_RATE_MS / 86_400_000
                    )
                })?;
            if every < 60_000 {
                return Err("a drill runs at most once a minute".into());
            }
            return Ok(Schedule::Rate(every));
        }
        let inner = s
            .strip_prefix("cron(")
            .and_then(|r| r.strip_suffix(')'))
            .ok_or(
                "give rate(...) or cron(...) in EventBridge syntax, e.g. cron(0 10 ? * MON#1 *)",
            )?;
        let f: Vec<&str> = inner.split_whitespace().collect();
        let [min, hour, dom, month, dow, year] = f[..] else {
            return Err(format!(
                "cron(...) has six fields (minutes hours day-of-month month day-of-week year), not {}",
                f.len()
            ));
        };
        let at = |name: &str, r: Result<Vec<bool>, String>| r.map_err(|e| format!("{name}: {e}"));
        if year != "*" {
            return Err("year: only * is supported".into());
        }
        if dom.contains('W') {
            return Err("W (nearest weekday) is not supported".into());
        }
        let days = match (dom, dow) {
            ("?", "?") | (_, _) if dom != "?" && dow != "?" => {
                return Err(
                    "give day-of-month or day-of-week and ? for the other (e.g. cron(0 10 ? * MON *))"
                        .into(),
                );
            }
            (_, "?") => {
                let last = dom == "L";
                Days::OfMonth {
                    days: if last {
                        vec![false; 32]
                    } else {
                        at("day-of-month", field(dom, &[], 1, 1, 31))?
                    },
                    last,
                }
            }
            _ => {
                let (mut plain, mut last, mut nth) = (Vec::new(), Vec::new(), Vec::new());
                for item in dow.split(',') {
                    if let Some(d) = item.strip_suffix('L') {
                        last.push(
                            value(d, &WEEKDAYS, 1, 1, 7)
                                .map_err(|e| format!("day-of-week: {e}"))?,
                        );
                    } else if let Some((d, k)) = item.split_once('#') {
                        let d = value(d, &WEEKDAYS, 1, 1, 7)
                            .map_err(|e| format!("day-of-week: {e}"))?;
                        let k = k
                            .parse::<u8>()
                            .ok()
                            .filter(|k| (1..=5).contains(k))
                            .ok_or("day-of-week: #n takes 1 to 5")?;
                        nth.push((d, k));
                    } else {
                        plain.push(item);
                    }
                }
                let days = if plain.is_empty() {
                    vec![false; 8]
                } else {
                    at("day-of-week", field(&plain.join(","), &WEEKDAYS, 1, 1, 7))?
                };
                Days::OfWeek { days, last, nth }
            }
        };
        Ok(Schedule::Cron(Box::new(Cron {
            minutes: at("minutes", field(min, &[], 0, 0, 59))?,
            hours: at("hours", field(hour, &[], 0, 0, 23))?,
            months: at("month", field(month, &MONTHS, 1, 1, 12))?,
            days,
        })))
    }

    /// The first run strictly after `after` (Unix ms); a rate counts from
    /// `origin`. Local times skipped by a clock change are skipped.
    pub fn next_after(&self, after: i64, origin: i64) -> Option<i64> {
        match self {
            Schedule::Rate(every) => {
                if *every <= 0 {
                    return None;
                }
                // Checked: a time past the end of the range has no next run.
                let n = after.checked_sub(origin)?.div_euclid(*every) + 1;
                origin.checked_add(n.max(1).checked_mul(*every)?)
            }
            Schedule::Cron(c) => c.next_after(after),
        }
    }
}

fn weekday_number(w: Weekday) -> u8 {
    // EventBridge: 1 = Sunday.
    w.to_sunday_one_offset() as u8
}

impl Cron {
    fn day_matches(&self, d: Date) -> bool {
        if !self.months[d.month() as usize] {
            return false;
        }
        match &self.days {
            Days::OfMonth { days, last } => {
                if *last {
                    d.day() == d.days_in_month()
                } else {
                    days[d.day() as usize]
                }
            }
            Days::OfWeek { days, last, nth } => {
                let w = weekday_number(d.weekday());
                days[usize::from(w)]
                    || (last.contains(&w) && d.day() + 7 > d.days_in_month())
                    || nth.contains(&(w, ((d.day() - 1) / 7 + 1) as u8))
            }
        }
    }

    fn next_after(&self, after: i64) -> Option<i64> {
        let tz = TimeZone::get("Europe/Brussels").ok()?;
        let start = jiff::Timestamp::from_millisecond(after)
            .ok()?
            .to_zoned_datetime(tz.clone());
        let mut day = start.date();
        // Five years of days is more than any valid expression needs.
        for _ in 0..(366 * 5) {
            if self.day_matches(day) {
                for h in (0..24).filter(|h| self.hours[*h]) {
                    for m in (0..60).filter(|m| self.minutes[*m]) {
                        let local = DateTime::new(
                            day.year(),
                            day.month(),
                            day.day(),
                            h as i8,
                            m as i8,
                            0,
                            0,
                        )
                        .ok()?;
                        // A time a clock change skipped does not exist.
                        let Ok(zoned) = local.to_zoned_datetime(tz.clone()) else {
                            continue;
                        };
                        if zoned.datetime() != local {
                            continue;
                        }
                        let ms = zoned.timestamp().as_millisecond();
                        if ms > after {
                            return Some(ms);
                        }
                    }
                }
            }
            day = day.tomorrow().ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        crate::cap::parse_time(s).unwrap()
    }

    #[test]
    fn rates_and_crons_run_when_eventbridge_would_in_belgian_time() {
        let s = Schedule::parse("rate(1 day)").unwrap();
        assert_eq!(
            s.next_after(
                ms("2026-11-29T10:00:00+01:00"),
                ms("2026-11-28T09:00:00+01:00")
            ),
            Some(ms("2026-11-29T09:00:00+01:00") + 86_400_000)
        );
        // The first Monday of each month at 10:00 (BE-Alert's test slot).
        let first_monday = Schedule::parse("cron(0 10 ? * MON#1 *)").unwrap();
        assert_eq!(
            first_monday.next_after(ms("2026-11-29T10:00:00+01:00"), 0),
            Some(ms("2026-12-07T10:00:00+01:00"))
        );
        // Summer time: 10:00 in Brussels is 08:00 UTC.
        assert_eq!(
            first_monday.next_after(ms("2026-06-02T00:00:00+02:00"), 0),
            Some(ms("2026-07-06T10:00:00+02:00"))
        );
        // Every weekday at 02:30: the night the clocks go forward has no
        // 02:30 (2027-03-28 is a Sunday, so Monday 29 is next anyway).
        let night = Schedule::parse("cron(30 2 ? * MON-FRI *)").unwrap();
        assert_eq!(
            night.next_after(ms("2027-03-26T03:00:00+01:00"), 0),
            Some(ms("2027-03-29T02:30:00+02:00"))
        );
        let last_day = Schedule::parse("cron(0 12 L * ? *)").unwrap();
        assert_eq!(
            last_day.next_after(ms("2027-02-01T00:00:00+01:00"), 0),
            Some(ms("2027-02-28T12:00:00+01:00"))
        );
        let last_friday = Schedule::parse("cron(15 9 ? * 6L *)").unwrap();
        assert_eq!(
            last_friday.next_after(ms("2026-11-01T00:00:00+01:00"), 0),
            Some(ms("2026-11-27T09:15:00+01:00"))
        );
        let every_15 = Schedule::parse("cron(*/15 * * * ? *)").unwrap();
        assert_eq!(
            every_15.next_after(ms("2026-11-29T10:07:00+01:00"), 0),
            Some(ms("2026-11-29T10:15:00+01:00"))
        );
    }

    #[test]
    fn day_names_with_a_w_are_days_not_the_nearest_weekday() {
        // WED once read as the unsupported `W` modifier.
        let s = Schedule::parse("cron(0 12 ? * WED#1 *)").unwrap();
        let after = ms("2026-11-29T10:00:00+01:00");
        assert_eq!(
            s.next_after(after, 0),
            Some(ms("2026-12-02T12:00:00+01:00"))
        );
        assert!(Schedule::parse("cron(0 12 ? * TUE,WED *)").is_ok());
        assert!(
            Schedule::parse("cron(0 12 15W * ? *)")
                .unwrap_err()
                .contains("W (nearest weekday)")
        );
    }

    #[test]
    fn a_rate_too_long_to_count_is_refused_not_an_overflow() {
        for long in [
            "rate(9223372036854775807 days)",
            "rate(106751991167301 days)",
            "rate(3661 days)",
        ] {
            let e = Schedule::parse(long).unwrap_err();
            assert!(e.contains("at least once every 3660 days"), "{long}: {e}");
        }
        assert_eq!(
            Schedule::parse("rate(3660 days)").unwrap(),
            Schedule::Rate(3660 * 86_400_000)
        );
        // Times at the ends of the range have no next run, rather than one
        // computed with an overflow.
        let daily = Schedule::parse("rate(1 day)").unwrap();
        assert_eq!(daily.next_after(i64::MAX, i64::MIN), None);
        assert_eq!(daily.next_after(i64::MAX - 1, 0), None);
        assert_eq!(Schedule::Rate(0).next_after(0, 0), None);
    }

    #[test]
    fn bad_schedules_say_what_to_fix() {
        for (bad, words) in [
            ("every day", "rate(...) or cron(...)"),
            ("rate(0 days)", "positive"),
            ("rate(2 day)", "singular for 1"),
            ("cron(0 10 * * *)", "six fields"),
            ("cron(0 10 * * MON *)", "? for the other"),
            ("cron(0 25 ? * MON *)", "hours"),
            ("cron(0 10 ? * MON 2027)", "year"),
            ("cron(0 10 15W * ? *)", "W"),
            ("cron(0 10 ? XYZ MON *)", "month"),
        ] {
            let e = Schedule::parse(bad).unwrap_err();
            assert!(e.contains(words), "{bad}: {e}");
        }
    }
}
