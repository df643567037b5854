//! What a policy check finds, and how serious it is: a leaf that the error type may name.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// How serious a finding is, from `safe` to `high`; ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityIssueSeverity {
    /// Nothing to worry about; as a threshold, everything counts.
    #[default]
    Safe = 0,
    /// Worth knowing.
    Low = 1,
    /// Usually unwanted in untrusted code.
    Medium = 2,
    /// Dangerous.
    High = 3,
}

impl SecurityIssueSeverity {
    /// Every level, lowest first.
    pub const ALL: [SecurityIssueSeverity; 4] = [Self::Safe, Self::Low, Self::Medium, Self::High];

    /// The level named `name` (case-insensitive, surrounding blanks ignored).
    pub(crate) fn named(name: &str) -> Option<Self> {
        let wanted = name.trim();
        Self::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(wanted))
    }

    /// The lowercase name: `safe`, `low`, `medium` or `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Safe => "safe",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

impl fmt::Display for SecurityIssueSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn not_a_severity(name: &str) -> String {
    format!("`{name}` is not a severity; use safe, low, medium or high")
}

impl<'de> Deserialize<'de> for SecurityIssueSeverity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::named(&name).ok_or_else(|| serde::de::Error::custom(not_a_severity(&name)))
    }
}

/// One finding of [`SecurityPolicy::check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The 1-based line.
    pub line: usize,
    /// What was found and why it matters.
    pub description: String,
    /// How serious it is.
    pub severity: SecurityIssueSeverity,
    /// The code that matched (a pattern's match, or the line that uses a module).
    pub matched: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: [{}] {} (`{}`)",
            self.line, self.severity, self.description, self.matched
        )
    }
}
