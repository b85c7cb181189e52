//! What can be wrong with a config: each variant renders as one line that names the JSON path.

use std::path::PathBuf;

/// A config that cannot be used, with the JSON path of the offending value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("reading config '{}': {source}", path.display())]
    Io {
        /// The config file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The text is not JSON.
    #[error("config is not valid JSON: {0}")]
    Syntax(String),
    /// A key aquant does not know (a typo, or a POT parameter aquant does not honour).
    #[error("unknown key `{key}` at `{path}`{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Its JSON path.
        path: String,
        /// The nearest known key, when one is close.
        suggestion: Option<String>,
    },
    /// A value of the wrong JSON type or outside the values a key takes.
    #[error("`{path}`: {message}")]
    WrongType {
        /// The JSON path.
        path: String,
        /// What was expected.
        message: String,
    },
    /// A required key is absent.
    #[error("missing `{0}`")]
    Missing(String),
    /// A value that is well-typed but not acceptable.
    #[error("`{path}`: {message}")]
    Invalid {
        /// The JSON path.
        path: String,
        /// Why it is refused.
        message: String,
    },
}

impl ConfigError {
    /// Shorthand for [`ConfigError::Invalid`].
    pub(crate) fn invalid(path: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// A value the library's own validation refused, without the library's `config:` prefix.
    pub(crate) fn rejected(path: &str, error: crate::Error) -> Self {
        let message = match error {
            crate::Error::Config(message) => message,
            other => other.to_string(),
        };
        ConfigError::invalid(path, message)
    }
}
