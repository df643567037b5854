//! What llm-sandbox's native backend and its init program share.
//!
//! The native backend never forks a sandbox from the caller's process: it executes the
//! `llm-sandbox-init` program (this crate's binary, embedded in the library and run from a
//! sealed memory file), so that no process of the sandbox holds a copy of the caller's memory.
//! The two sides speak the [`protocol`] over a socket pair; the library describes the sandbox
//! to build as an [`config::InitConfig`]. [`syscalls`] names what sandboxed code may not call,
//! once, for the native filter and the container backends' seccomp profiles alike.

pub mod config;
pub mod protocol;
pub mod syscalls;
