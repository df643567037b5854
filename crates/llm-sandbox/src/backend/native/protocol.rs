//! The wire between the library and the sandbox's init: length-prefixed frames on a socket pair.
//!
//! A frame is `kind: u8, length: u32 (little endian), payload`. Control messages are JSON;
//! output and archives travel as raw bytes.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest frame either side accepts (archives are bounded separately).
pub const MAX_FRAME: usize = 1 << 30;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// A JSON [`Request`] or [`Reply`].
    Control = 0,
    /// A chunk of the command's stdout.
    Stdout = 1,
    /// A chunk of the command's stderr.
    Stderr = 2,
    /// Raw bytes belonging to the preceding control message (stdin, a tar archive).
    Blob = 3,
}

impl FrameKind {
    fn from_byte(byte: u8) -> io::Result<Self> {
        Ok(match byte {
            0 => FrameKind::Control,
            1 => FrameKind::Stdout,
            2 => FrameKind::Stderr,
            3 => FrameKind::Blob,
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad frame kind {other}"),
                ))
            }
        })
    }
}

/// Requests from the library to init.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Run a command; followed by a Blob frame with stdin when `has_stdin`.
    Exec {
        argv: Vec<String>,
        env: Vec<(String, String)>,
        cwd: String,
        has_stdin: bool,
        timeout_ms: u64,
        output_limit: u64,
    },
    /// Unpack the following Blob (a tar) into `dest_dir`.
    PutArchive { dest_dir: String },
    /// Send `path` back as a tar Blob.
    GetArchive { path: String, max_bytes: u64 },
    /// Remove a file or directory tree (a missing path is fine).
    Remove { path: String },
    /// Handshake: the id maps are in place; the keeper may fork init.
    Start,
    /// Handshake: init is in the session's cgroup (or there is none); init may finish its set-up
    /// (the cgroup namespace is made from its cgroup) and serve.
    Attached,
}

/// Replies from init to the library.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// Handshake: the keeper has unshared its namespaces and waits for its id maps.
    Unshared,
    /// Handshake: the keeper forked init, which is `pid` in the library's pid namespace.
    Forked { pid: i32 },
    /// The sandbox is set up and waits for requests.
    Ready,
    /// Setting up the sandbox failed at `step`.
    SetupFailed { step: String, message: String },
    /// An Exec ended.
    Exited {
        exit_code: i32,
        timed_out: bool,
        stdout_truncated: bool,
        stderr_truncated: bool,
    },
    /// A PutArchive succeeded; a GetArchive's Blob was sent.
    Done,
    /// A request failed; the sandbox stays usable.
    Failed { message: String },
}

fn header(kind: FrameKind, length: usize) -> io::Result<[u8; 5]> {
    if length > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frame too large",
        ));
    }
    let mut header = [0u8; 5];
    header[0] = kind as u8;
    header[1..].copy_from_slice(&(length as u32).to_le_bytes());
    Ok(header)
}

fn parse_header(header: [u8; 5]) -> io::Result<(FrameKind, usize)> {
    let length = u32::from_le_bytes(header[1..].try_into().expect("4 bytes")) as usize;
    if length > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    Ok((FrameKind::from_byte(header[0])?, length))
}

/// Encodes a control message.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    serde_json::to_vec(message).expect("protocol messages always serialize")
}

/// Decodes a control message.
pub fn decode<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> io::Result<T> {
    serde_json::from_slice(payload).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Blocking frame I/O, used by init.
pub mod blocking {
    use super::*;

    /// Writes one frame.
    pub fn write_frame(mut w: impl Write, kind: FrameKind, payload: &[u8]) -> io::Result<()> {
        w.write_all(&header(kind, payload.len())?)?;
        w.write_all(payload)
    }

    /// Reads one frame; `None` at a clean end of stream.
    pub fn read_frame(mut r: impl Read) -> io::Result<Option<(FrameKind, Vec<u8>)>> {
        let mut head = [0u8; 5];
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let (kind, length) = parse_header(head)?;
        let mut payload = vec![0u8; length];
        r.read_exact(&mut payload)?;
        Ok(Some((kind, payload)))
    }
}

/// Async frame I/O, used by the library.
pub mod nonblocking {
    use super::*;

    /// Writes one frame.
    pub async fn write_frame<W: AsyncWriteExt + Unpin>(
        w: &mut W,
        kind: FrameKind,
        payload: &[u8],
    ) -> io::Result<()> {
        w.write_all(&header(kind, payload.len())?).await?;
        w.write_all(payload).await
    }

    /// Reads one frame; an end of stream is an error (init never closes first on purpose).
    pub async fn read_frame<R: AsyncReadExt + Unpin>(
        r: &mut R,
    ) -> io::Result<(FrameKind, Vec<u8>)> {
        let mut head = [0u8; 5];
        r.read_exact(&mut head).await?;
        let (kind, length) = parse_header(head)?;
        let mut payload = vec![0u8; length];
        r.read_exact(&mut payload).await?;
        Ok((kind, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut wire = Vec::new();
        blocking::write_frame(&mut wire, FrameKind::Control, &encode(&Reply::Done)).unwrap();
        blocking::write_frame(&mut wire, FrameKind::Blob, b"\x00\xff").unwrap();
        let mut reader = &wire[..];
        let (kind, payload) = blocking::read_frame(&mut reader).unwrap().unwrap();
        assert_eq!(kind, FrameKind::Control);
        assert!(matches!(decode::<Reply>(&payload).unwrap(), Reply::Done));
        assert_eq!(
            blocking::read_frame(&mut reader).unwrap().unwrap(),
            (FrameKind::Blob, vec![0, 255])
        );
        assert!(blocking::read_frame(&mut reader).unwrap().is_none());
    }

    #[test]
    fn oversized_or_unknown_frames_are_refused() {
        let mut bad = [9u8, 0, 0, 0, 0];
        assert!(blocking::read_frame(&bad[..]).is_err());
        bad[0] = 0;
        bad[1..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(blocking::read_frame(&bad[..]).is_err());
    }
}
