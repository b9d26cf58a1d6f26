//! This process's AWS configuration: its `AWS_*` environment variables and
//! its AWS config file, read here and resolved by the core's pure
//! [`credstate::resolve_config`]. The adapters' `Provider::from_env` and the
//! CLI read their configuration through [`resolve_process_config`].

use std::io::ErrorKind;

use credstate::{
    config_file_path, resolve_config, Environment, ProfileFile, ResolveError, ResolvedConfig,
    Settings,
};

/// Why this process's configuration could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvironmentError {
    /// The AWS config file exists but could not be read.
    #[error("cannot read the config file {path}: {source}")]
    ConfigFileUnreadable {
        /// The file's path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A value is invalid; the error names the key and where it came from.
    #[error(transparent)]
    Invalid(#[from] ResolveError),
}

/// The environment variables that configuration resolution may read.
fn environment() -> Environment {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| name.starts_with("AWS_"))
        .collect()
}

fn home_directory() -> Option<String> {
    ["HOME", "USERPROFILE"]
        .into_iter()
        .find_map(|var| std::env::var(var).ok().filter(|home| !home.is_empty()))
}

/// The configuration that `settings`, this process's environment and its
/// AWS config file (`AWS_CONFIG_FILE`, default `~/.aws/config`; a missing
/// file counts as empty) resolve to. The caller reports the warnings.
pub fn resolve_process_config(settings: &Settings) -> Result<ResolvedConfig, EnvironmentError> {
    let env = environment();
    let path = config_file_path(settings, &env, home_directory().as_deref());
    let text = match &path {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            // No config file is the common case: resolve as if it were empty.
            Err(err) if err.kind() == ErrorKind::NotFound => Some(String::new()),
            Err(source) => {
                return Err(EnvironmentError::ConfigFileUnreadable {
                    path: path.clone(),
                    source,
                })
            }
        },
        None => None,
    };
    let file = path
        .as_deref()
        .zip(text.as_deref())
        .map(|(path, text)| ProfileFile { path, text });
    Ok(resolve_config(settings, &env, file)?)
}

/// The machine configuration of this process, as `Provider::from_env` uses
/// it: resolution warnings (an ignored endpoint mode, a missing profile) go to
/// `tracing` at warn level, target `credstate`.
pub fn process_machine_config() -> Result<credstate::Config, EnvironmentError> {
    let resolved = resolve_process_config(&Settings::default())?;
    for warning in &resolved.warnings {
        tracing::warn!(target: "credstate", "{warning}");
    }
    let mut config = credstate::Config::default();
    resolved.apply_to(&mut config);
    Ok(config)
}
