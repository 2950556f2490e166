//! `--junit FILE`: a run as JUnit XML, so CI systems show it: one test
//! suite (the tool), one test case per host and step (`classname` the
//! host, `name` the step, `time` its duration on the host); a failure
//! element with the error for a failed step, an error element for a host
//! that could not be reached (`type="unreachable"`) or a step the run's
//! interruption stopped (`type="interrupted"`), a skipped element for a
//! step that did not run (its plan failed before it, or the run stopped
//! before its batch); a changed step's summary and diff in its
//! `system-out` (`would change:` in a check run).

use std::fmt::Write as _;

use crate::journal::Run;

/// The run as a JUnit XML document.
///
/// ```
/// use chopsticks_cli::journal::{Run, Step};
///
/// let mut run = Run::new("motd", ["-H", "web1"]);
/// run.steps.push(Step::new("web1", "motd", "failed", "ops::file /etc/motd: <denied> \u{1b}[31m"));
/// run.end(2);
/// let xml = chopsticks_cli::junit::document(&run);
/// assert!(xml.contains(r#"<testcase classname="web1" name="motd""#));
/// assert!(xml.contains("&lt;denied&gt; \\u{1b}[31m"));
/// ```
pub fn document(run: &Run) -> String {
    let failed = |s: &str| s == "failed";
    let error = |s: &str| matches!(s, "unreachable" | "interrupted");
    let skipped = |s: &str| s == "skipped";
    let count = |f: &dyn Fn(&str) -> bool| run.steps.iter().filter(|s| f(&s.status)).count();
    let (failures, errors, skips) = (count(&failed), count(&error), count(&skipped));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    // JUnit's timestamp: ISO 8601 without fractional seconds or zone.
    let timestamp = run.start.get(..19).unwrap_or(&run.start);
    let suite = format!(
        "name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" \
         skipped=\"{skips}\" time=\"{:.3}\" timestamp=\"{}\"",
        escape(&run.tool),
        run.steps.len(),
        run.seconds,
        escape(timestamp),
    );
    let _ = writeln!(out, "<testsuites {suite}>");
    let _ = writeln!(out, "  <testsuite {suite}>");
    for step in &run.steps {
        let time = step.ms.unwrap_or(0.0) / 1e3;
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.3}\">",
            escape(&step.host),
            escape(&step.step),
        );
        let first = step.summary.lines().next().unwrap_or("");
        match step.status.as_str() {
            s if failed(s) => {
                let _ = write!(
                    out,
                    "<failure message=\"{}\" type=\"{s}\">{}</failure>",
                    escape(first),
                    escape(&step.summary)
                );
            }
            s if error(s) => {
                let _ = write!(
                    out,
                    "<error message=\"{}\" type=\"{s}\">{}</error>",
                    escape(first),
                    escape(&step.summary)
                );
            }
            s if skipped(s) => {
                let _ = write!(out, "<skipped message=\"{s}: {}\"/>", escape(first));
            }
            s => {
                let s = match (s, run.check) {
                    ("changed", true) => "would change",
                    (s, _) => s,
                };
                let mut text = format!("{s}: {}\n", step.summary);
                if let Some(diff) = &step.diff {
                    text.push_str(diff);
                }
                let _ = write!(out, "<system-out>{}</system-out>", escape(&text));
            }
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// `text` fit for XML 1.0 text and attribute values: the five markup
/// characters as entities, tab, newline and carriage return as character
/// references (so attributes keep them), and the characters XML 1.0 has
/// no place for (the other controls, U+FFFE, U+FFFF) written out as
/// `\u{1b}`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Step;

    #[test]
    fn markup_and_controls_are_escaped() {
        assert_eq!(
            escape("a<b>&\"c'\u{0}\u{7}\t\n\u{ffff}é"),
            "a&lt;b&gt;&amp;&quot;c&apos;\\u{0}\\u{7}&#9;&#10;\\u{ffff}é"
        );
    }

    #[test]
    fn each_status_has_its_element() {
        let mut run = Run::new("tool", ["-H", "a,b"]);
        run.steps.push(
            Step::new("a", "motd", "changed", "set")
                .diff(Some("-x\n+y\n"))
                .duration(Some(std::time::Duration::from_millis(1500))),
        );
        run.steps
            .push(Step::new("a", "svc", "failed", "broken\nsecond line"));
        run.steps
            .push(Step::new("b", "motd", "unreachable", "refused"));
        run.end(4);
        run.steps
            .push(Step::new("b", "svc", "skipped", "the run stopped"));
        let xml = document(&run);
        assert!(
            xml.contains("tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\""),
            "{xml}"
        );
        let timestamp = format!("timestamp=\"{}\"", &run.start[..19]);
        assert!(xml.contains(&timestamp), "{xml}");
        assert_eq!(run.start[..19].len(), "2026-12-07T08:13:19".len());
        assert!(xml.contains(
            "<testcase classname=\"a\" name=\"motd\" time=\"1.500\"><system-out>changed: set&#10;-x&#10;+y&#10;</system-out>"
        ), "{xml}");
        assert!(
            xml.contains(
                "<failure message=\"broken\" type=\"failed\">broken&#10;second line</failure>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<error message=\"refused\" type=\"unreachable\">refused</error>"),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"skipped: the run stopped\"/>"),
            "{xml}"
        );
        run.check = true;
        assert!(document(&run).contains("<system-out>would change: set"));
    }
}
