//! A small, exact checker for five-field cron expressions (`minute hour day-of-month month
//! day-of-week`), the syntax of `schedules[].cron_string` and a trigger's `config.cron_expression`.
//!
//! Each field is a comma-separated list of items; an item is `*`, a number, a range `a-b`
//! (`a <= b`), or a step `*/n` or `a-b/n` (`n >= 1`). Numbers must be in the field's range:
//! minute 0–59, hour 0–23, day-of-month 1–31, month 1–12 (or `JAN`–`DEC`), day-of-week 0–7 (or
//! `SUN`–`SAT`; 0 and 7 are Sunday). Names are case-insensitive. Macros such as `@hourly` and
//! six-field (seconds) expressions are not five-field cron and are rejected.

use std::fmt;

/// One of the five fields of a cron expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronField {
    /// The field's name (`minute`, `hour`, `day-of-month`, `month`, `day-of-week`).
    pub name: &'static str,
    /// The smallest allowed number.
    pub min: u32,
    /// The largest allowed number.
    pub max: u32,
    names: &'static [&'static str],
    names_start: u32,
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The five fields, in order.
pub const FIELDS: [CronField; 5] = [
    CronField {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        names_start: 0,
    },
    CronField {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        names_start: 0,
    },
    CronField {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
        names_start: 0,
    },
    CronField {
        name: "month",
        min: 1,
        max: 12,
        names: MONTHS,
        names_start: 1,
    },
    CronField {
        name: "day-of-week",
        min: 0,
        max: 7,
        names: DAYS,
        names_start: 0,
    },
];

/// Why a cron expression is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CronError {
    /// The expression does not have five whitespace-separated fields.
    FieldCount {
        /// How many fields it has.
        found: usize,
    },
    /// One field is wrong.
    Field {
        /// The field's name (`minute`, …).
        field: &'static str,
        /// The field's text.
        text: String,
        /// Why it is wrong.
        reason: String,
    },
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CronError::FieldCount { found } => write!(
                f,
                "expected five fields (minute hour day-of-month month day-of-week), found {found}"
            ),
            CronError::Field {
                field,
                text,
                reason,
            } => write!(f, "{field} field `{text}`: {reason}"),
        }
    }
}

impl std::error::Error for CronError {}

/// Checks a five-field cron expression.
///
/// ```
/// use flowpack_core::validate::cron::check_cron;
/// assert!(check_cron("*/15 * * * *").is_ok());
/// assert!(check_cron("0 9-17/2 * JAN-MAR mon,wed,fri").is_ok());
/// assert_eq!(
///     check_cron("0 24 * * *").unwrap_err().to_string(),
///     "hour field `24`: 24 is out of range 0-23"
/// );
/// ```
pub fn check_cron(expr: &str) -> Result<(), CronError> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(CronError::FieldCount {
            found: fields.len(),
        });
    }
    for (text, field) in fields.iter().zip(FIELDS.iter()) {
        check_field(text, field).map_err(|reason| CronError::Field {
            field: field.name,
            text: (*text).to_string(),
            reason,
        })?;
    }
    Ok(())
}

fn check_field(text: &str, field: &CronField) -> Result<(), String> {
    for item in text.split(',') {
        if item.is_empty() {
            return Err("empty list item".into());
        }
        check_item(item, field)?;
    }
    Ok(())
}

fn check_item(item: &str, field: &CronField) -> Result<(), String> {
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some(step)),
        None => (item, None),
    };
    if let Some(step) = step {
        let n = parse_number(step).ok_or_else(|| format!("step `{step}` is not a number"))?;
        if n == 0 {
            return Err("step must be at least 1".into());
        }
    }
    if base == "*" {
        return Ok(());
    }
    match base.split_once('-') {
        Some((a, b)) => {
            let lo = value(a, field)?;
            let hi = value(b, field)?;
            if lo > hi {
                return Err(format!("range `{base}` runs backwards ({lo} > {hi})"));
            }
            Ok(())
        }
        None => {
            if step.is_some() {
                return Err(format!(
                    "a step applies to `*` or a range, not to the single value `{base}`"
                ));
            }
            value(base, field).map(|_| ())
        }
    }
}

fn value(text: &str, field: &CronField) -> Result<u32, String> {
    if text.is_empty() {
        return Err("missing number in range".into());
    }
    if let Some(pos) = field
        .names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(text))
    {
        return Ok(field.names_start + pos as u32);
    }
    let Some(n) = parse_number(text) else {
        let what = if field.names.is_empty() {
            String::new()
        } else {
            format!(
                " or a name ({}-{})",
                field.names[0],
                field.names.last().unwrap()
            )
        };
        return Err(format!("`{text}` is not a number{what}"));
    };
    if n < u64::from(field.min) || n > u64::from(field.max) {
        return Err(format!(
            "{text} is out of range {}-{}",
            field.min, field.max
        ));
    }
    Ok(n as u32)
}

/// A non-empty run of ASCII digits (saturating, so huge numbers are out of range, not errors).
fn parse_number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(expr: &str) -> String {
        check_cron(expr).unwrap_err().to_string()
    }

    #[test]
    fn accepts_the_documented_forms() {
        for ok in [
            "* * * * *",
            "*/15 * * * *",
            "0 * * * *",
            "0,30 8-18 1-31/2 1,6,12 0-7",
            "5 4 * jan-Dec sun-SAT",
            "0 0 1 * MON",
            "59 23 31 12 7",
            "  0   12 * * *  ",
            "0-59/1 0-0 1 1 0",
        ] {
            assert_eq!(check_cron(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn names_the_field_and_the_reason() {
        assert_eq!(
            err("*/15 * * *"),
            "expected five fields (minute hour day-of-month month day-of-week), found 4"
        );
        assert_eq!(
            err("@hourly"),
            "expected five fields (minute hour day-of-month month day-of-week), found 1"
        );
        assert!(err("0 0 * * * *").ends_with("found 6"));
        assert_eq!(
            err("60 * * * *"),
            "minute field `60`: 60 is out of range 0-59"
        );
        assert_eq!(
            err("0 24 * * *"),
            "hour field `24`: 24 is out of range 0-23"
        );
        assert_eq!(
            err("0 0 0 * *"),
            "day-of-month field `0`: 0 is out of range 1-31"
        );
        assert_eq!(
            err("0 0 32 * *"),
            "day-of-month field `32`: 32 is out of range 1-31"
        );
        assert_eq!(
            err("0 0 * 13 *"),
            "month field `13`: 13 is out of range 1-12"
        );
        assert_eq!(
            err("0 0 * * 8"),
            "day-of-week field `8`: 8 is out of range 0-7"
        );
        assert_eq!(
            err("0 0 * FOO *"),
            "month field `FOO`: `FOO` is not a number or a name (JAN-DEC)"
        );
        assert_eq!(err("x * * * *"), "minute field `x`: `x` is not a number");
        assert_eq!(
            err("0 0 * * MON-SUNDAY"),
            "day-of-week field `MON-SUNDAY`: `SUNDAY` is not a number or a name (SUN-SAT)"
        );
        assert_eq!(
            err("30-10 * * * *"),
            "minute field `30-10`: range `30-10` runs backwards (30 > 10)"
        );
        assert_eq!(
            err("*/0 * * * *"),
            "minute field `*/0`: step must be at least 1"
        );
        assert_eq!(
            err("*/x * * * *"),
            "minute field `*/x`: step `x` is not a number"
        );
        assert_eq!(
            err("5/15 * * * *"),
            "minute field `5/15`: a step applies to `*` or a range, not to the single value `5`"
        );
        assert_eq!(err("1,,2 * * * *"), "minute field `1,,2`: empty list item");
        assert_eq!(
            err("-5 * * * *"),
            "minute field `-5`: missing number in range"
        );
        assert_eq!(
            err("99999999999999999999999 * * * *"),
            "minute field `99999999999999999999999`: 99999999999999999999999 is out of range 0-59"
        );
    }
}
