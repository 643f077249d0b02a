//! Logging setup: `tracing` to stdout, JSON or pretty, filtered by `REGISTRAR_LOG`.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Install the global subscriber (once; later calls are ignored, which tests rely on).
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
