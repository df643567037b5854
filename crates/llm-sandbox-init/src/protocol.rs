//! The wire between the library and the sandbox's keeper and init: length-prefixed frames on a
//! socket pair.
//!
//! A frame is `kind: u8, length: u32 (little endian), payload`. Control messages are JSON;
//! output and archives travel as raw bytes. Every reader bounds the frames it accepts by kind
//! ([`FrameLimits`]) before allocating: the library treats init as untrusted, since init shares
//! a pid namespace and a uid with the code it runs.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use crate::config::InitConfig;

/// The largest frame either side ever accepts.
pub const MAX_FRAME: usize = 1 << 30;

/// The largest control message (a request with its argv and environment, or a reply).
pub const MAX_CONTROL: usize = 4 << 20;

/// The largest chunk of output init sends in one frame.
pub const OUTPUT_CHUNK: usize = 64 << 10;

/// The size of a frame header.
pub const HEADER_LEN: usize = 5;

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
            other => return Err(invalid(format!("bad frame kind {other}"))),
        })
    }
}

/// The largest payload a reader accepts, per kind of frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Control messages.
    pub control: usize,
    /// Output chunks; 0 when no output may arrive.
    pub output: usize,
    /// Blobs; 0 when no blob may arrive.
    pub blob: usize,
}

impl FrameLimits {
    /// Control messages only.
    pub const CONTROL: FrameLimits = FrameLimits {
        control: MAX_CONTROL,
        output: 0,
        blob: 0,
    };

    /// What init accepts from the library: any request, and blobs up to [`MAX_FRAME`].
    pub const FROM_LIBRARY: FrameLimits = FrameLimits {
        control: MAX_CONTROL,
        output: 0,
        blob: MAX_FRAME,
    };

    /// Control messages and output chunks (while a command runs).
    pub const RUNNING: FrameLimits = FrameLimits {
        control: MAX_CONTROL,
        output: OUTPUT_CHUNK,
        blob: 0,
    };

    /// Control messages and one blob of at most `bytes`.
    pub fn with_blob(bytes: u64) -> FrameLimits {
        FrameLimits {
            blob: bytes.min(MAX_FRAME as u64) as usize,
            ..FrameLimits::CONTROL
        }
    }

    fn limit(&self, kind: FrameKind) -> usize {
        match kind {
            FrameKind::Control => self.control,
            FrameKind::Stdout | FrameKind::Stderr => self.output,
            FrameKind::Blob => self.blob,
        }
    }
}

/// Requests from the library.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Handshake, to the keeper: the sandbox to build. The keeper unshares its namespaces,
    /// writes its id maps, forks init and answers [`Reply::Forked`].
    Configure(Box<InitConfig>),
    /// Handshake, to init: init is in the session's cgroup (or there is none); init may finish
    /// its set-up (the cgroup namespace is made from its cgroup) and serve.
    Attached,
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
    /// Open a TCP listener on the sandbox's loopback and hand it to the library, which serves
    /// it from outside (the package proxy of installs). Answered by [`Reply::Listening`].
    Listen,
}

/// Replies to the library.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// Handshake: the keeper forked init, which is `pid` in the library's pid namespace.
    Forked { pid: i32 },
    /// The sandbox is set up and waits for requests; `isolation` adds what init found out
    /// about the isolation in force, as (feature, description) lines.
    Ready { isolation: Vec<(String, String)> },
    /// Setting up the sandbox failed at `step`.
    SetupFailed { step: String, message: String },
    /// An Exec ended.
    Exited {
        exit_code: i32,
        timed_out: bool,
        stdout_truncated: bool,
        stderr_truncated: bool,
    },
    /// A PutArchive or Remove succeeded; a GetArchive's Blob was sent.
    Done,
    /// A request failed; the sandbox stays usable.
    Failed { message: String },
    /// A GetArchive was refused: the path is a link (copies never follow one).
    CopyRefused { reason: String },
    /// A GetArchive's archive would exceed its `max_bytes`.
    CopyTooLarge,
    /// A listener on the sandbox's 127.0.0.1:`port`; its descriptor follows as the one byte
    /// of a message carrying it (`SCM_RIGHTS`).
    Listening { port: u16 },
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// The header of a frame of `kind` carrying `length` bytes.
pub fn header(kind: FrameKind, length: usize) -> io::Result<[u8; HEADER_LEN]> {
    if length > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frame too large",
        ));
    }
    let mut header = [0u8; HEADER_LEN];
    header[0] = kind as u8;
    header[1..].copy_from_slice(&(length as u32).to_le_bytes());
    Ok(header)
}

/// Parses a header, refusing a frame larger than `limits` allow for its kind.
pub fn parse_header(
    header: [u8; HEADER_LEN],
    limits: FrameLimits,
) -> io::Result<(FrameKind, usize)> {
    let kind = FrameKind::from_byte(header[0])?;
    let length = u32::from_le_bytes(header[1..].try_into().expect("4 bytes")) as usize;
    let limit = limits.limit(kind);
    if length > limit {
        return Err(invalid(format!(
            "a {kind:?} frame of {length} bytes where at most {limit} may come"
        )));
    }
    Ok((kind, length))
}

/// Encodes a control message.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    serde_json::to_vec(message).expect("protocol messages always serialize")
}

/// Decodes a control message.
pub fn decode<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> io::Result<T> {
    serde_json::from_slice(payload).map_err(|e| invalid(e.to_string()))
}

/// Writes one frame.
pub fn write_frame(mut w: impl Write, kind: FrameKind, payload: &[u8]) -> io::Result<()> {
    w.write_all(&header(kind, payload.len())?)?;
    w.write_all(payload)
}

/// Reads one frame within `limits`; `None` at a clean end of stream.
pub fn read_frame(
    mut r: impl Read,
    limits: FrameLimits,
) -> io::Result<Option<(FrameKind, Vec<u8>)>> {
    let mut head = [0u8; HEADER_LEN];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let (kind, length) = parse_header(head, limits)?;
    let mut payload = vec![0u8; length];
    r.read_exact(&mut payload)?;
    Ok(Some((kind, payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut wire = Vec::new();
        write_frame(&mut wire, FrameKind::Control, &encode(&Reply::Done)).unwrap();
        write_frame(&mut wire, FrameKind::Blob, b"\x00\xff").unwrap();
        let mut reader = &wire[..];
        let limits = FrameLimits::with_blob(2);
        let (kind, payload) = read_frame(&mut reader, limits).unwrap().unwrap();
        assert_eq!(kind, FrameKind::Control);
        assert!(matches!(decode::<Reply>(&payload).unwrap(), Reply::Done));
        assert_eq!(
            read_frame(&mut reader, limits).unwrap().unwrap(),
            (FrameKind::Blob, vec![0, 255])
        );
        assert!(read_frame(&mut reader, limits).unwrap().is_none());
    }

    #[test]
    fn oversized_unexpected_or_unknown_frames_are_refused() {
        let mut bad = [9u8, 0, 0, 0, 0];
        assert!(read_frame(&bad[..], FrameLimits::FROM_LIBRARY).is_err());
        bad[0] = 0;
        bad[1..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read_frame(&bad[..], FrameLimits::FROM_LIBRARY).is_err());
        // Output where none may come, and output larger than a chunk.
        let mut wire = Vec::new();
        write_frame(&mut wire, FrameKind::Stdout, b"x").unwrap();
        assert!(read_frame(&wire[..], FrameLimits::CONTROL).is_err());
        let mut wire = Vec::new();
        write_frame(&mut wire, FrameKind::Stdout, &vec![0; OUTPUT_CHUNK + 1]).unwrap();
        assert!(read_frame(&wire[..], FrameLimits::RUNNING).is_err());
        // A blob larger than the one asked for.
        let mut wire = Vec::new();
        write_frame(&mut wire, FrameKind::Blob, &[0; 11]).unwrap();
        assert!(read_frame(&wire[..], FrameLimits::with_blob(10)).is_err());
    }
}
