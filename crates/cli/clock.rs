//! The one place the binary reads the clock for what it writes into archives.

use anyhow::Context;
use time::OffsetDateTime;

/// The time to record as an archive's `created_at`: `SOURCE_DATE_EPOCH` when set (reproducible
/// builds), else now; whole seconds either way.
pub fn created_at() -> anyhow::Result<OffsetDateTime> {
    let t = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => {
            let secs: i64 = s
                .trim()
                .parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH {s:?} is not a number"))?;
            OffsetDateTime::from_unix_timestamp(secs)
                .with_context(|| format!("SOURCE_DATE_EPOCH {s:?} is out of range"))?
        }
        Err(_) => OffsetDateTime::now_utc(),
    };
    Ok(t.replace_nanosecond(0)?)
}
