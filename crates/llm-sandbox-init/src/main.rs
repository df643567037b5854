//! `llm-sandbox-init`: the keeper and init of one native sandbox.
//!
//! The library executes this program (embedded in it, from a sealed memory file) with one end
//! of a socket pair as descriptor 3 and nothing else: no arguments, no environment, stdio on
//! /dev/null. So the sandbox starts from a clean image, never from a copy of the caller's
//! memory, whatever the caller is (the CLI, a test binary, a Python interpreter).
//!
//! The process started is the *keeper* ([`keeper`]): it creates the sandbox's namespaces and
//! forks *init* ([`init`]), pid 1 of the new pid namespace, which confines itself step by step
//! ([`confine`], [`rootfs`], [`seccomp`]) and then serves the library's requests ([`runner`],
//! [`files`]).

mod confine;
mod files;
mod init;
mod keeper;
mod rootfs;
mod runner;
mod seccomp;

fn main() {
    std::process::exit(keeper::run());
}
