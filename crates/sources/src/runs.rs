//! Runs of log lines from one source in a batch: a batch from one sender
//! is mostly one app's lines, so per-source bookkeeping ([`crate::rate`],
//! [`crate::activity`]) looks each source up once per run, not per line.

use std::ops::Range;

use envelope::Envelope;

/// One run: the source, the batch indexes it spans (other envelope kinds
/// in between included) and how many log lines it holds.
pub struct Run<'a> {
    pub source_id: &'a str,
    pub span: Range<usize>,
    pub lines: usize,
}

pub fn is_line(env: &Envelope) -> bool {
    matches!(env.message, Some(envelope::v2::Message::Log(_)))
}

/// The runs of `batch`, in order; envelopes that are not log lines belong
/// to no run's count.
pub fn log_runs(batch: &[Envelope]) -> impl Iterator<Item = Run<'_>> {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < batch.len() && !is_line(&batch[i]) {
            i += 1;
        }
        let first = batch.get(i)?;
        let start = i;
        let mut lines = 0;
        while let Some(env) = batch.get(i) {
            if is_line(env) {
                if env.source_id != first.source_id {
                    break;
                }
                lines += 1;
            }
            i += 1;
        }
        Some(Run {
            source_id: &first.source_id,
            span: start..i,
            lines,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(source: &str) -> Envelope {
        Envelope::log(
            1,
            source.to_owned(),
            String::new(),
            bytes::Bytes::new(),
            envelope::LogType::Out,
        )
    }

    #[test]
    fn consecutive_lines_of_a_source_are_one_run() {
        let batch = vec![
            Envelope::event(1, "a", "t", "b"),
            line("a"),
            line("a"),
            Envelope::event(1, "b", "t", "b"),
            line("a"),
            line("b"),
            line("a"),
        ];
        let runs: Vec<(&str, Range<usize>, usize)> = log_runs(&batch)
            .map(|r| (r.source_id, r.span, r.lines))
            .collect();
        assert_eq!(runs, vec![("a", 1..5, 3), ("b", 5..6, 1), ("a", 6..7, 1)]);
        assert_eq!(log_runs(&[Envelope::event(1, "a", "t", "b")]).count(), 0);
    }
}
