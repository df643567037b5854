//! Languages: how code in each language is compiled, run and given packages.
//!
//! A [`LanguageHandler`] knows nothing about backends: it turns code into commands (argv, never
//! shell strings) that any backend runs. The [`LanguageRegistry`] holds the built-in handlers
//! and any a user registers.

mod cpp;
mod detect;
mod go;
mod handler;
mod java;
mod javascript;
mod python;
mod registry;
mod ruby;

/// Source masking: comments removed, string contents blanked, per language syntax.
pub mod source;

pub use cpp::Cpp;
pub use go::Go;
pub use handler::{
    validate_library_name, LanguageHandler, PlotCapture, PlotContext, RunContext, Toolchain,
};
pub use java::Java;
pub use javascript::JavaScript;
pub use python::Python;
pub use registry::LanguageRegistry;
pub use ruby::Ruby;

pub use crate::paths::find_program;
