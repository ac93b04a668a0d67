//! The server's logs as Pyroscope writes them (`-log.format`): logfmt by default
//! (`ts=… level=info caller=server msg="emberscope listening" address=…`), or one JSON object
//! per line; on stderr, with terminal colours only for a terminal (a file or a collector gets
//! none).

use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The formats `-log.format` takes.
pub const FORMATS: &[&str] = &["logfmt", "json"];

/// Starts logging to stderr with `filter` (tracing's syntax) in `format`.
pub fn init(filter: &str, format: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("log.level: {filter:?} is not a log filter"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        "logfmt" => builder.event_format(Logfmt).init(),
        "json" => builder.json().flatten_event(true).init(),
        other => anyhow::bail!("log.format: {other:?} is not one of {}", FORMATS.join(", ")),
    }
    Ok(())
}

/// One event as a logfmt line: `ts`, `level`, `caller` (the module), `msg`, then its fields.
struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        writer.write_str("ts=")?;
        SystemTime.format_time(&mut writer)?;
        write!(
            writer,
            " level={} caller={}",
            metadata.level().as_str().to_ascii_lowercase(),
            metadata.target()
        )?;
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let Some(message) = &fields.message {
            write!(writer, " msg={}", quoted(message))?;
        }
        for (name, value) in &fields.pairs {
            write!(writer, " {name}={}", quoted(value))?;
        }
        writeln!(writer)
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    pairs: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.pairs.push((field.name(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.pairs.push((field.name(), text));
        }
    }
}

/// A logfmt value: as it is when it needs no quotes, else quoted as Go's `strconv.Quote` does
/// (what Pyroscope's logfmt writer uses).
fn quoted(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c == ' ' || c == '"' || c == '=' || c == '\\' || c.is_control());
    if plain {
        value.to_owned()
    } else {
        formats::pprof::go_quote(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_they_must_be() {
        assert_eq!(quoted("127.0.0.1:4040"), "127.0.0.1:4040");
        assert_eq!(quoted("emberscope listening"), "\"emberscope listening\"");
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("x=1"), "\"x=1\"");
        assert_eq!(quoted("one\ntwo"), "\"one\\ntwo\"");
    }
}
