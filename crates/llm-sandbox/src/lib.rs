//! llm-sandbox runs untrusted, model-written code safely and fast.
//!
//! ```no_run
//! # async fn demo() -> llm_sandbox::Result<()> {
//! use llm_sandbox::SandboxSession;
//!
//! let session = SandboxSession::builder().lang("python").open().await?;
//! let result = session.run("print('hello')").await?;
//! assert_eq!(result.stdout, "hello\n");
//! session.close().await?;
//! # Ok(()) }
//! ```
//!
//! The default backend is native: Linux namespaces, cgroups, seccomp and rlimits, with no daemon
//! and no image. See [`backend`] for the seam other backends plug into.

mod archive;
mod artifacts;
pub mod backend;
pub mod blocking;
mod collect;
mod error;
pub mod language;
mod paths;
mod result;
pub mod security;
mod session;
mod spec;

pub use artifacts::{Artifact, ArtifactLimits, Omitted, PlotFormat, PlotOutput};
pub use backend::{Backend, BackendKind, CloseReport};
pub use error::{Error, ErrorKind, Result};
pub use language::{LanguageHandler, LanguageRegistry};
pub use result::ExecutionResult;
pub use security::{
    RestrictedModule, SecurityIssueSeverity, SecurityPattern, SecurityPolicy, Violation,
};
pub use session::{auto_order, CommandOptions, RunOptions, SandboxSession, SandboxSessionBuilder};
pub use spec::{
    parse_size, EngineConfig, NetworkMode, Progress, ProgressSink, ResourceLimits, SandboxSpec,
    TlsFiles, DEFAULT_SEARCH_PATH,
};
