//! The request id on every line logged while a request is served. It used
//! to come from a per-request span, which the JSON formatter copied into
//! every line at a cost paid by every request (the access line's share of
//! it measured about 13 µs of CPU per profile read); the id is already in
//! a task-local ([`crate::service::request`]), so the formatter reads it
//! from there instead, and only for the lines actually written.
//!
//! The field is added by wrapping the line formatter: a line written inside
//! a request is formatted into a buffer and `request_id` is put in before
//! its end (the last field of a JSON object, or the last field of a text
//! line). A line that names its own `request_id` (the access line, which is
//! written after the request's scope has ended) is left as it is, so no
//! line has the field twice. Lines outside a request (start-up, background
//! tasks, the CLI) have none.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::{
    fmt::{
        format::{FormatEvent, FormatFields, Writer},
        FmtContext,
    },
    registry::LookupSpan,
};

use crate::service::request;

/// The field's name, as on the access line.
pub const FIELD: &str = "request_id";

/// How the wrapped formatter ends a line, and so where the field goes.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// One JSON object a line: the field is the object's last member.
    Json,
    /// `… message key=value…`: the field is the last `key=value`, its name
    /// in italics on a colour terminal as the formatter writes the others.
    Text { colour: bool },
}

/// A line formatter `F` whose lines inside a request carry [`FIELD`].
#[derive(Debug)]
pub struct WithRequestId<F> {
    inner: F,
    shape: Shape,
}

impl<F> WithRequestId<F> {
    /// Around the JSON formatter.
    pub fn json(inner: F) -> Self {
        Self {
            inner,
            shape: Shape::Json,
        }
    }

    /// Around the text formatter; `colour` must be what `inner` was told
    /// (a buffered line cannot ask the terminal's writer).
    pub fn text(inner: F, colour: bool) -> Self {
        Self {
            inner,
            shape: Shape::Text { colour },
        }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.metadata().fields().field(FIELD).is_none() {
            let inside = request::with_id(|id| self.with_field(ctx, writer.by_ref(), event, id));
            if let Some(written) = inside {
                return written;
            }
        }
        self.inner.format_event(ctx, writer, event)
    }
}

impl<F> WithRequestId<F> {
    /// Formats `event` into a buffer, then writes it with `id` put in.
    fn with_field<S, N>(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
        id: &str,
    ) -> fmt::Result
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
        F: FormatEvent<S, N>,
    {
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let (head, tail) = split(&line, self.shape);
        writer.write_str(head)?;
        match self.shape {
            Shape::Json => {
                let id = serde_json::to_string(id).map_err(|_| fmt::Error)?;
                write!(writer, ",\"{FIELD}\":{id}")?;
            }
            // The formatter's own style for a field name: italic, then a
            // dimmed `=`.
            Shape::Text { colour: true } => {
                write!(writer, " \x1b[3m{FIELD}\x1b[0m\x1b[2m=\x1b[0m{id:?}")?
            }
            Shape::Text { colour: false } => write!(writer, " {FIELD}={id:?}")?,
        }
        writer.write_str(tail)
    }
}

/// `line` cut where the field goes: before the JSON object's closing brace,
/// or before the text line's line break. A line of neither shape (which
/// the formatters do not write) is kept whole, the field after it.
fn split(line: &str, shape: Shape) -> (&str, &str) {
    let at = match shape {
        Shape::Json => line.rfind('}'),
        Shape::Text { .. } => line.rfind('\n'),
    };
    line.split_at(at.unwrap_or(line.len()))
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::{Arc, Mutex},
    };

    use serde_json::Value;
    use tracing_subscriber::EnvFilter;

    use super::super::{subscriber, Output};
    use crate::service::request;

    /// What a subscriber of `output` writes while `lines` run, inside the
    /// request `id` if there is one.
    async fn logged(output: Output, id: Option<&str>, lines: impl FnOnce()) -> String {
        #[derive(Clone)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().expect("sink").extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink(Arc::default());
        let to = sink.clone();
        let sub = subscriber(EnvFilter::new("trace"), output, move || to.clone());
        let _default = tracing::subscriber::set_default(sub);
        match id {
            Some(id) => request::scope(id.to_owned(), async { lines() }).await,
            None => lines(),
        }
        let bytes = sink.0.lock().expect("sink").clone();
        String::from_utf8(bytes).expect("UTF-8")
    }

    fn json(text: &str) -> Vec<Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    const ID: &str = "0193f1a2-0000-7000-8000-000000000001";

    #[tokio::test]
    async fn a_json_line_inside_a_request_carries_its_id_and_no_span() {
        let text = logged(Output::Json, Some(ID), || {
            tracing::warn!(error = "disk full", code = 7, "could not keep an answer");
            tracing::error!("bare");
        })
        .await;
        let lines = json(&text);
        assert_eq!(lines.len(), 2, "{text}");
        for l in &lines {
            assert_eq!(l["request_id"], ID, "{l}");
            assert!(l.get("span").is_none() && l.get("spans").is_none(), "{l}");
            assert!(l["target"].is_string() && l["timestamp"].is_string(), "{l}");
        }
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["message"], "could not keep an answer");
        assert_eq!(lines[0]["error"], "disk full");
        assert_eq!(lines[0]["code"], 7);
    }

    #[tokio::test]
    async fn a_line_naming_its_own_request_id_has_it_once() {
        let text = logged(Output::Json, Some(ID), || {
            tracing::info!(request_id = "its-own", "request");
        })
        .await;
        assert_eq!(text.matches("\"request_id\"").count(), 1, "{text}");
        assert_eq!(json(&text)[0]["request_id"], "its-own");
    }

    #[tokio::test]
    async fn a_line_outside_a_request_has_no_request_id() {
        let json_text = logged(Output::Json, None, || tracing::warn!("at start-up")).await;
        assert!(
            json(&json_text)[0].get("request_id").is_none(),
            "{json_text}"
        );
        let text = logged(Output::Text { colour: false }, None, || {
            tracing::warn!("at start-up")
        })
        .await;
        assert!(!text.contains("request_id="), "{text}");
    }

    #[tokio::test]
    async fn an_id_that_needs_escaping_keeps_the_line_json() {
        let text = logged(Output::Json, Some("a\"b\nc"), || tracing::warn!("x")).await;
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(json(&text)[0]["request_id"], "a\"b\nc");
    }

    #[tokio::test]
    async fn a_text_line_ends_with_the_id_coloured_only_on_a_terminal() {
        let plain = logged(Output::Text { colour: false }, Some(ID), || {
            tracing::warn!(code = "x", "refused")
        })
        .await;
        assert!(
            plain.ends_with(&format!("code=\"x\" request_id=\"{ID}\"\n")),
            "{plain:?}"
        );
        assert!(!plain.contains('\u{1b}'), "{plain:?}");
        let coloured = logged(Output::Text { colour: true }, Some(ID), || {
            tracing::warn!(code = "x", "refused")
        })
        .await;
        assert!(
            coloured.ends_with(&format!(
                " \u{1b}[3mrequest_id\u{1b}[0m\u{1b}[2m=\u{1b}[0m\"{ID}\"\n"
            )),
            "{coloured:?}"
        );
        // The formatter's own fields are coloured too.
        assert!(coloured.contains("\u{1b}[3mcode\u{1b}[0m"), "{coloured:?}");
    }
}
