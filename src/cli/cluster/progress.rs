//! One progress line for the commands that follow a move or a drain. On a terminal the line
//! is rewritten in place (`\r`, padded over what it replaces) on every poll; anywhere else
//! (a log, a pipe, a Kubernetes hook) a plain line is written only when the news changes,
//! not five times a second for the clock alone.

use std::io::Write;
use std::time::Duration;

/// The line being shown.
pub struct Progress<W: Write> {
    /// Where it is written (stdout, or a buffer in tests).
    out: W,
    /// Rewrite in place (a terminal) or append lines.
    in_place: bool,
    /// Characters of the line on screen, to blank what a shorter one leaves over.
    shown_chars: usize,
    /// The news of the last line written as a plain line.
    last_news: Option<String>,
}

impl Progress<std::io::Stdout> {
    /// On stdout, in place when stdout is a terminal.
    pub fn stdout() -> Self {
        use std::io::IsTerminal;
        let out = std::io::stdout();
        let in_place = out.is_terminal();
        Self::new(out, in_place)
    }
}

impl<W: Write> Progress<W> {
    /// On `out`; `in_place` for a terminal.
    pub fn new(out: W, in_place: bool) -> Self {
        Self {
            out,
            in_place,
            shown_chars: 0,
            last_news: None,
        }
    }

    /// Show `news` (the state and counts) with the time elapsed.
    pub fn update(&mut self, news: &str, elapsed: Duration) {
        let line = format!("{news} [{}]", duration(elapsed));
        if self.in_place {
            self.rewrite(&line);
        } else if self.last_news.as_deref() != Some(news) {
            self.last_news = Some(news.to_string());
            // A vanished stdout must not stop the command; the outcome still decides.
            let _ = writeln!(self.out, "{line}");
        }
        let _ = self.out.flush();
    }

    /// End with `line` (the outcome), on a line of its own.
    pub fn finish(&mut self, line: &str) {
        if self.in_place {
            self.rewrite(line);
            self.shown_chars = 0;
            let _ = writeln!(self.out);
        } else {
            let _ = writeln!(self.out, "{line}");
        }
        let _ = self.out.flush();
    }

    /// Leave the line as it is, so an error printed next starts on a line of its own.
    pub fn interrupt(&mut self) {
        if self.in_place && self.shown_chars > 0 {
            self.shown_chars = 0;
            let _ = writeln!(self.out);
            let _ = self.out.flush();
        }
    }

    /// `\r`, the line, and blanks over the rest of the previous one.
    fn rewrite(&mut self, line: &str) {
        let chars = line.chars().count();
        let pad = self.shown_chars.saturating_sub(chars);
        let _ = write!(self.out, "\r{line}{}", " ".repeat(pad));
        self.shown_chars = chars;
    }

    /// What was written (tests read their buffer back).
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// `850ms`, `12.3s`, `3m05s`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let secs = d.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(progress: Progress<Vec<u8>>) -> String {
        String::from_utf8(progress.into_inner()).expect("utf-8")
    }

    #[test]
    fn a_terminal_line_is_rewritten_in_place_and_blanked_behind() {
        let mut p = Progress::new(Vec::new(), true);
        p.update("running, 3 held", Duration::from_millis(200));
        p.update("done", Duration::from_millis(400));
        p.finish("done in 400ms");
        assert_eq!(
            written(p),
            "\rrunning, 3 held [200ms]\rdone [400ms]           \rdone in 400ms\n"
        );
    }

    #[test]
    fn plain_lines_only_when_the_news_changes() {
        let mut p = Progress::new(Vec::new(), false);
        p.update("pending", Duration::from_millis(200));
        p.update("pending", Duration::from_millis(400));
        p.update("running", Duration::from_millis(600));
        p.update("running", Duration::from_millis(800));
        p.finish("done in 1.0s");
        assert_eq!(
            written(p),
            "pending [200ms]\nrunning [600ms]\ndone in 1.0s\n"
        );
    }

    #[test]
    fn durations_read_as_milliseconds_seconds_then_minutes() {
        assert_eq!(duration(Duration::from_millis(0)), "0ms");
        assert_eq!(duration(Duration::from_millis(999)), "999ms");
        assert_eq!(duration(Duration::from_millis(1_250)), "1.2s");
        assert_eq!(duration(Duration::from_millis(59_940)), "59.9s");
        assert_eq!(duration(Duration::from_secs(185)), "3m05s");
    }
}
