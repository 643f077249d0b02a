//! Logging setup: `tracing` to stdout, JSON or pretty, filtered by `REGISTRAR_LOG`.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Install the global subscriber (once; later calls are ignored, which tests rely on).
pub fn init(filter: &str, format: LogFormat) {
    let filter = with_quiet_returns(filter);
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// `filter` with lapin's warning per returned message silenced, unless the filter names
/// that target itself. lapin logs every message the broker returns (unroutable) with its
/// whole body written out as a list of byte values, one line per event; the relay already
/// logs one line per round naming the routing keys, and formatting those bodies took 7% of
/// the CPU in a benchmark whose events were all returned.
fn with_quiet_returns(filter: &str) -> String {
    const RETURNS: &str = "lapin::returned_messages";
    if filter.contains(RETURNS) {
        filter.to_string()
    } else {
        format!("{filter},{RETURNS}=error")
    }
}

#[cfg(test)]
mod tests {
    use super::with_quiet_returns;

    #[test]
    fn returned_message_warnings_are_off_unless_asked_for() {
        assert_eq!(
            with_quiet_returns("warn"),
            "warn,lapin::returned_messages=error"
        );
        let asked = "info,lapin::returned_messages=warn";
        assert_eq!(with_quiet_returns(asked), asked);
        for filter in ["warn", "info,registrar=debug"] {
            let filter = with_quiet_returns(filter);
            assert!(
                tracing_subscriber::EnvFilter::try_new(&filter).is_ok(),
                "{filter}"
            );
        }
    }
}
