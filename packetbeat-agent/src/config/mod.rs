//! The `packetbeat.yml` model: Packetbeat 8.x keys and defaults, `-E` overrides, validation.
//!
//! Loading goes file → YAML tree (dotted keys expanded, overrides applied, see [`tree`]) → typed
//! [`Config`]. Keys this agent does not know are warned about (with their full dotted path), bad values
//! are rejected with the key's name. Protocol entries are read by [`crate::protocols::registry`].

pub mod duration;
mod model;
pub mod tree;

use std::path::Path;

pub use model::*;
use serde_norway::Value;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("config file {path} is not valid YAML: {message}")]
    Yaml {
        /// The file.
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A key has a bad value.
    #[error("invalid value for `{key}`: {message}")]
    Invalid {
        /// Dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The result of loading: the config and the keys that were not recognised (to be warned about).
#[derive(Debug)]
pub struct Loaded {
    /// The typed configuration.
    pub config: Config,
    /// Dotted paths of keys nobody reads.
    pub unknown_keys: Vec<String>,
}

/// Loads `path` (or the defaults when `None`) and applies `overrides` (`key=value`).
///
/// # Errors
/// Unreadable file, invalid YAML, malformed override, or a bad value (named by its key).
pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Loaded, ConfigError> {
    let mut tree = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|source| ConfigError::Read { path: p.display().to_string(), source })?;
            parse_yaml(&text, &p.display().to_string())?
        }
        None => Value::Mapping(serde_norway::Mapping::new()),
    };
    for o in overrides {
        tree::apply_override(&mut tree, o).map_err(|message| ConfigError::Invalid {
            key: o.split('=').next().unwrap_or_default().to_owned(),
            message,
        })?;
    }
    from_tree(tree)
}

/// Parses YAML text into an expanded tree (an empty document is an empty map).
///
/// # Errors
/// Invalid YAML.
pub fn parse_yaml(text: &str, origin: &str) -> Result<Value, ConfigError> {
    let v: Value = serde_norway::from_str(text)
        .map_err(|e| ConfigError::Yaml { path: origin.to_owned(), message: e.to_string() })?;
    Ok(match v {
        Value::Null => Value::Mapping(serde_norway::Mapping::new()),
        v => tree::expand_dotted(v),
    })
}

/// Reads an expanded tree into the typed model.
///
/// # Errors
/// A bad value, named by its dotted key.
pub fn from_tree(tree: Value) -> Result<Loaded, ConfigError> {
    let mut unknown_keys = Vec::new();
    let mut cb = |p: serde_ignored::Path<'_>| unknown_keys.push(p.to_string());
    let de = serde_ignored::Deserializer::new(tree, &mut cb);
    let config: Config = serde_path_to_error::deserialize(de)
        .map_err(|e| ConfigError::Invalid { key: e.path().to_string(), message: e.inner().to_string() })?;
    config.validate()?;
    Ok(Loaded { config, unknown_keys })
}
