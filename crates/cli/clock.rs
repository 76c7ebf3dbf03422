//! The one place the binary reads the clock for what it writes into archives.

use time::OffsetDateTime;

use crate::outcome::Failure;

/// The time to record as an archive's `created_at`: `SOURCE_DATE_EPOCH` when set (reproducible
/// builds), else now; whole seconds either way.
pub fn created_at() -> Result<OffsetDateTime, Failure> {
    let t = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => {
            let secs: i64 = s
                .trim()
                .parse()
                .map_err(|_| Failure::usage(format!("SOURCE_DATE_EPOCH {s:?} is not a number")))?;
            OffsetDateTime::from_unix_timestamp(secs)
                .map_err(|_| Failure::usage(format!("SOURCE_DATE_EPOCH {s:?} is out of range")))?
        }
        Err(_) => OffsetDateTime::now_utc(),
    };
    Ok(t.replace_nanosecond(0).expect("0 nanoseconds is in range"))
}

/// Now, in whole seconds, as RFC 3339 (a push's start time).
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 nanoseconds is in range")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a UTC time formats as RFC 3339")
}
