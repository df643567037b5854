//! The one output-capping rule of every backend: each stream keeps at most the request's
//! `output_limit` bytes, marked truncated when more came, and the streaming callback sees
//! exactly the bytes kept, in order.

use super::{ExecOutput, OutputCallback, OutputStream};

/// Collects a command's output into an [`ExecOutput`] within a limit.
pub struct OutputBuffer<'a, 'b> {
    limit: usize,
    output: &'a mut ExecOutput,
    on_output: OutputCallback<'b>,
}

impl<'a, 'b> OutputBuffer<'a, 'b> {
    /// Keeps at most `limit` bytes of each stream in `output`, passing them to `on_output`.
    pub fn new(limit: u64, output: &'a mut ExecOutput, on_output: OutputCallback<'b>) -> Self {
        OutputBuffer {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            output,
            on_output,
        }
    }

    /// Takes one chunk of `stream`: what fits is kept and handed on, the rest dropped.
    pub fn push(&mut self, stream: OutputStream, chunk: &[u8]) {
        let (kept, truncated) = match stream {
            OutputStream::Stdout => (&mut self.output.stdout, &mut self.output.stdout_truncated),
            OutputStream::Stderr => (&mut self.output.stderr, &mut self.output.stderr_truncated),
        };
        let room = self.limit.saturating_sub(kept.len());
        let taken = &chunk[..chunk.len().min(room)];
        *truncated |= taken.len() < chunk.len();
        if !taken.is_empty() {
            (self.on_output)(stream, taken);
            kept.extend_from_slice(taken);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stream_keeps_its_limit_and_the_callback_sees_what_is_kept() {
        let mut output = ExecOutput::default();
        let mut seen = Vec::new();
        let mut record = |stream: OutputStream, chunk: &[u8]| seen.push((stream, chunk.to_vec()));
        let mut buffer = OutputBuffer::new(4, &mut output, &mut record);
        buffer.push(OutputStream::Stdout, b"abc");
        buffer.push(OutputStream::Stderr, b"x");
        buffer.push(OutputStream::Stdout, b"def");
        buffer.push(OutputStream::Stdout, b"ghi");
        assert_eq!(output.stdout, b"abcd");
        assert!(output.stdout_truncated);
        assert_eq!(
            (output.stderr.as_slice(), output.stderr_truncated),
            (&b"x"[..], false)
        );
        assert_eq!(
            seen,
            [
                (OutputStream::Stdout, b"abc".to_vec()),
                (OutputStream::Stderr, b"x".to_vec()),
                (OutputStream::Stdout, b"d".to_vec()),
            ]
        );
    }
}
