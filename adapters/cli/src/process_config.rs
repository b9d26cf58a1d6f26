//! This process's AWS configuration: its `AWS_*` environment variables and
//! its AWS config file, read here and resolved by the core. `credstate config`
//! and the live commands both read their configuration through [`resolve`].

use std::io::ErrorKind;

use credstate::{
    config_file_path, resolve_config, Environment, ProfileFile, ResolvedConfig, Settings,
};

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

/// The configuration `settings`, this process's environment and its AWS
/// config file resolve to; on failure, a one-line message naming the cause.
/// The caller reports the resolution's warnings.
pub fn resolve(settings: &Settings) -> Result<ResolvedConfig, String> {
    let env = environment();
    let path = config_file_path(settings, &env, home_directory().as_deref());
    let text = match &path {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            // No config file is the common case: resolve as if it were empty.
            Err(err) if err.kind() == ErrorKind::NotFound => Some(String::new()),
            Err(err) => return Err(format!("cannot read the config file {path}: {err}")),
        },
        None => None,
    };
    let file = path
        .as_deref()
        .zip(text.as_deref())
        .map(|(path, text)| ProfileFile { path, text });
    resolve_config(settings, &env, file).map_err(|err| err.to_string())
}
