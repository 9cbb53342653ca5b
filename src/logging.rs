//! Where and how the process logs: to stderr (stdout carries a command's
//! results, such as the token `arkku token` prints last), in the format of
//! `ARKKU_LOG_FORMAT`. `auto` writes JSON, one object a line, unless stderr
//! is a terminal, where it writes text; colour codes only ever go to a
//! terminal, and not even there when `NO_COLOR` is set.

mod request_id;

use std::io::IsTerminal;

use tracing_subscriber::{fmt::MakeWriter, util::SubscriberInitExt, EnvFilter};

use self::request_id::WithRequestId;

/// `ARKKU_LOG_FORMAT` / `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// JSON unless stderr is a terminal.
    Auto,
    /// One JSON object a line.
    Json,
    /// Human-readable lines.
    Text,
}

/// The format decided for this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Text { colour: bool },
}

impl LogFormat {
    /// What `self` means when the log stream is (or is not) a `terminal`
    /// and `no_color` is (or is not) asked for.
    pub fn resolve(self, terminal: bool, no_color: bool) -> Output {
        match self {
            LogFormat::Json => Output::Json,
            LogFormat::Auto if !terminal => Output::Json,
            LogFormat::Auto | LogFormat::Text => Output::Text {
                colour: terminal && !no_color,
            },
        }
    }
}

/// Installs the global subscriber: `filter` in `tracing` EnvFilter syntax
/// (an invalid one falls back to `info`), lines in `format` on stderr. A
/// panic is logged as one line too, with its location and only a message
/// that was fixed text (a formatted one may hold data).
pub fn init(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let output = format.resolve(std::io::stderr().is_terminal(), no_color);
    subscriber(filter, output, std::io::stderr).init();
    std::panic::set_hook(Box::new(|info| {
        let panic_message = info.payload().downcast_ref::<&'static str>().copied();
        let location = info.location().map(ToString::to_string);
        tracing::error!(
            panic_message,
            location = location.as_deref(),
            request_id = %crate::service::request::id(),
            "panicked"
        );
    }));
}

/// The subscriber writing `output` to `writer`. No span is copied into a
/// line (arkku opens none per request: see [`request_id`]), and each line
/// written while a request is served carries its `request_id`.
fn subscriber<W>(
    filter: EnvFilter,
    output: Output,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match output {
        Output::Json => Box::new(
            builder
                .with_ansi(false)
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .map_event_format(WithRequestId::json)
                .finish(),
        ),
        Output::Text { colour } => Box::new(
            builder
                .with_ansi(colour)
                .map_event_format(|f| WithRequestId::text(f.with_ansi(colour), colour))
                .finish(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_json_unless_the_log_goes_to_a_terminal() {
        assert_eq!(LogFormat::Auto.resolve(false, false), Output::Json);
        assert_eq!(
            LogFormat::Auto.resolve(true, false),
            Output::Text { colour: true }
        );
    }

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert_eq!(
            LogFormat::Text.resolve(false, false),
            Output::Text { colour: false }
        );
        assert_eq!(
            LogFormat::Text.resolve(true, true),
            Output::Text { colour: false }
        );
        assert_eq!(LogFormat::Json.resolve(true, false), Output::Json);
    }
}
