//! [`SandboxSession`]: one sandbox, its language, its limits and its lifetime.
//!
//! Written once for every backend: timeouts, the run steps (write code, compile, run, clean
//! up), toolchain checks, copies and installs live here; isolation lives behind
//! [`Backend`](crate::Backend). The session's state is in `state.rs`, its settings in
//! `builder.rs`, runs and commands in `run.rs`, copies and installs in `files.rs`.

mod builder;
mod files;
mod options;
mod run;
mod state;

pub use builder::{auto_order, SandboxSessionBuilder};
pub use options::{CommandOptions, RunOptions};
pub use state::SandboxSession;
