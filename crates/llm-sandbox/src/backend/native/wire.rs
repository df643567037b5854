//! The library's end of the protocol ([`llm_sandbox_init::protocol`]): async frame I/O with
//! the bounds the library puts on what init may send, and descriptors received from init.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use llm_sandbox_init::protocol::{header, parse_header, FrameKind, FrameLimits, HEADER_LEN};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::UnixStream;

/// Writes one frame.
pub async fn write_frame(w: &mut UnixStream, kind: FrameKind, payload: &[u8]) -> io::Result<()> {
    w.write_all(&header(kind, payload.len())?).await?;
    w.write_all(payload).await
}

/// Reads one frame within `limits`; an end of stream is an error (init never closes first on
/// purpose).
pub async fn read_frame(
    r: &mut UnixStream,
    limits: FrameLimits,
) -> io::Result<(FrameKind, Vec<u8>)> {
    let mut head = [0u8; HEADER_LEN];
    r.read_exact(&mut head).await?;
    let (kind, length) = parse_header(head, limits)?;
    let mut payload = vec![0u8; length];
    r.read_exact(&mut payload).await?;
    Ok((kind, payload))
}

/// Fails when init sent anything nobody asked for (data waiting before a request is sent):
/// every reply belongs to one request, so a frame after a request's last reply is forged.
pub fn ensure_quiet(socket: &UnixStream) -> io::Result<()> {
    let mut probe = [0u8; 1];
    match socket.try_read(&mut probe) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "init closed the socket",
        )),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "init sent data after its last reply",
        )),
    }
}

/// Receives the one descriptor init sends as the single byte of a message.
pub async fn receive_fd(socket: &UnixStream) -> io::Result<OwnedFd> {
    loop {
        socket.readable().await?;
        let received = socket.try_io(Interest::READABLE, || {
            let mut byte = [0u8; 1];
            let mut iov = [io::IoSliceMut::new(&mut byte)];
            let mut space = nix::cmsg_space!([RawFd; 1]);
            let message = recvmsg::<()>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map_err(io::Error::from)?;
            let mut fds: Vec<RawFd> = Vec::new();
            for cmsg in message.cmsgs().map_err(io::Error::from)? {
                if let ControlMessageOwned::ScmRights(rights) = cmsg {
                    fds.extend(rights);
                }
            }
            Ok((message.bytes, fds))
        });
        match received {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
            Ok((bytes, fds)) => {
                // SAFETY: the kernel installed these descriptors for us; each is owned once.
                let mut owned: Vec<OwnedFd> = fds
                    .into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
                    .collect();
                if bytes != 1 || owned.len() != 1 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "expected exactly one descriptor from init",
                    ));
                }
                return Ok(owned.remove(0));
            }
        }
    }
}
