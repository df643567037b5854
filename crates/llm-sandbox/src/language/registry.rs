//! The languages a session can use: the six built-ins and any a caller registers.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::cpp::Cpp;
use super::go::Go;
use super::handler::LanguageHandler;
use super::java::Java;
use super::javascript::JavaScript;
use super::python::Python;
use super::ruby::Ruby;
use crate::error::{Error, Result};

/// The set of languages a session can use: the six built-ins plus any registered ones.
#[derive(Debug, Clone)]
pub struct LanguageRegistry {
    handlers: BTreeMap<String, Arc<dyn LanguageHandler>>,
}

impl Default for LanguageRegistry {
    fn default() -> Self {
        let mut registry = LanguageRegistry {
            handlers: BTreeMap::new(),
        };
        registry.register(Arc::new(Python));
        registry.register(Arc::new(JavaScript));
        registry.register(Arc::new(Java));
        registry.register(Arc::new(Cpp));
        registry.register(Arc::new(Go));
        registry.register(Arc::new(Ruby));
        registry
    }
}

impl LanguageRegistry {
    /// A registry holding the built-in languages.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a language under its name.
    pub fn register(&mut self, handler: Arc<dyn LanguageHandler>) {
        self.handlers
            .insert(handler.name().to_ascii_lowercase(), handler);
    }

    /// Finds a language by name or alias (case-insensitive).
    pub fn get(&self, name: &str) -> Result<Arc<dyn LanguageHandler>> {
        let wanted = name.to_ascii_lowercase();
        if let Some(handler) = self.handlers.get(&wanted) {
            return Ok(handler.clone());
        }
        self.handlers
            .values()
            .find(|h| h.aliases().iter().any(|a| a.eq_ignore_ascii_case(&wanted)))
            .cloned()
            .ok_or_else(|| Error::LanguageNotSupported {
                name: name.to_string(),
                supported: self.names().join(", "),
            })
    }

    /// Finds the language whose file extension is `extension` (without the dot).
    pub fn by_extension(&self, extension: &str) -> Option<Arc<dyn LanguageHandler>> {
        self.handlers
            .values()
            .find(|h| h.file_extension().eq_ignore_ascii_case(extension))
            .cloned()
    }

    /// The registered language names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.handlers.keys().cloned().collect()
    }

    /// All registered handlers, sorted by name.
    pub fn handlers(&self) -> impl Iterator<Item = &Arc<dyn LanguageHandler>> {
        self.handlers.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_builtins_by_name_alias_and_extension() {
        let registry = LanguageRegistry::new();
        assert_eq!(
            registry.names(),
            ["cpp", "go", "java", "javascript", "python", "ruby"]
        );
        assert_eq!(registry.get("Python").unwrap().name(), "python");
        assert_eq!(registry.get("js").unwrap().name(), "javascript");
        assert_eq!(registry.get("c++").unwrap().name(), "cpp");
        assert_eq!(registry.by_extension("rb").unwrap().name(), "ruby");
        assert!(registry.by_extension("xyz").is_none());
    }

    #[test]
    fn unknown_language_lists_the_supported_ones() {
        let err = LanguageRegistry::new().get("cobol").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("cobol") && message.contains("python, ruby"),
            "{message}"
        );
    }
}
