//! Starting the sandbox's keeper: the embedded `llm-sandbox-init` program, executed from a
//! sealed memory file, with one end of a socket pair and nothing else of the caller.
//!
//! The program is built by this crate's build script. Executing it (instead of forking the
//! caller) means no process of the sandbox holds a copy of the caller's memory — its heap,
//! secrets, other sessions — whatever the caller is: the CLI, a test binary, a Python
//! interpreter with many threads. The memory file is sealed, so nothing can change the
//! program once it exists, and it is created once per process.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use nix::unistd::Pid;

/// The init program, as built for this target.
static PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/llm-sandbox-init"));

/// The descriptor the keeper finds its socket on.
const SOCKET_FD: RawFd = 3;

/// `MFD_EXEC` (Linux 6.3): the memory file may be executed even where `vm.memfd_noexec` makes
/// memory files non-executable by default.
const MFD_EXEC: libc::c_uint = 0x10;

/// The sealed memory file holding the program, made on first use.
fn program() -> io::Result<&'static OwnedFd> {
    static SEALED: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = SEALED.get() {
        return Ok(fd);
    }
    let fd = seal(PROGRAM)?;
    Ok(SEALED.get_or_init(|| fd)) // a racing thread's copy is simply dropped
}

fn seal(program: &[u8]) -> io::Result<OwnedFd> {
    let create = |flags: libc::c_uint| {
        // SAFETY: memfd_create with a static NUL-terminated name; the result is owned at once.
        let fd = unsafe { libc::memfd_create(c"llm-sandbox-init".as_ptr(), flags) };
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let fd = create(base | MFD_EXEC)
        .or_else(|| create(base)) // kernels before 6.3 do not know MFD_EXEC
        .ok_or_else(io::Error::last_os_error)?;
    let mut file = std::fs::File::from(fd);
    io::Write::write_all(&mut file, program)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(OwnedFd::from(file))
}

/// Starts the keeper with `socket` as its descriptor 3, stdio on /dev/null, no arguments but
/// its name and an empty environment. Returns its pid; the caller reaps it.
pub fn spawn_keeper(socket: &OwnedFd) -> io::Result<Pid> {
    let program = program()?.as_raw_fd();
    let name = CString::new("llm-sandbox-init").expect("no NUL");
    let argv = [name.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    // SAFETY: opening /dev/null; owned at once.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if null < 0 {
        return Err(io::Error::last_os_error());
    }
    let null = unsafe { OwnedFd::from_raw_fd(null) };
    let socket = socket.as_raw_fd();
    // SAFETY: the child of a possibly multi-threaded process makes only async-signal-safe
    // syscalls on values prepared before the fork, then executes the program or exits.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => unsafe {
            let moved = if socket == SOCKET_FD {
                libc::fcntl(SOCKET_FD, libc::F_SETFD, 0) // dup2 onto itself keeps CLOEXEC
            } else {
                libc::dup2(socket, SOCKET_FD)
            };
            for fd in 0..SOCKET_FD {
                if fd != socket {
                    libc::dup2(null.as_raw_fd(), fd);
                }
            }
            if moved >= 0 {
                libc::syscall(
                    libc::SYS_execveat,
                    program,
                    c"".as_ptr(),
                    argv.as_ptr(),
                    envp.as_ptr(),
                    libc::AT_EMPTY_PATH,
                );
            }
            libc::_exit(EXEC_FAILED)
        },
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(child),
        Err(e) => Err(e.into()),
    }
}

/// The keeper's exit code when the program could not be executed.
pub const EXEC_FAILED: i32 = 127;

/// Why executing the program may have failed here, for the error message.
pub fn exec_advice() -> String {
    let noexec = std::fs::read_to_string("/proc/sys/vm/memfd_noexec").unwrap_or_default();
    if noexec.trim() == "2" {
        "this host forbids executing memory files (vm.memfd_noexec = 2); set it to 0 or 1".into()
    } else {
        "executing the embedded llm-sandbox-init program from a memory file failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_is_embedded_and_sealed_against_writes() {
        assert!(PROGRAM.starts_with(b"\x7fELF"), "not an ELF binary");
        let fd = program().unwrap();
        let mut file = std::fs::File::from(fd.try_clone().unwrap());
        assert!(io::Write::write_all(&mut file, b"x").is_err());
    }
}
