//! The container credentials endpoint of ECS and EKS Pod Identity
//! (FIELD-GUIDE §2): one GET, authorized by a configured token or by a token
//! file read afresh before every fetch.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use serde::Deserialize;

use super::{status_error, Action, FileOp, Outgoing, Progress};
use crate::actions::{HeaderValue, Method, Response, Step, TransportFailure};
use crate::config::Config;
use crate::container::{check_auth_token, AuthTokenProblem, ContainerAuth, ContainerSource};
use crate::credentials::Secret;
use crate::errors::SourceError;
use crate::file_read::FileError;
use crate::parse::{parse_credentials_redacting, quotable};

const AUTHORIZATION_HEADER: &str = "authorization";

/// The configured endpoint; nothing outlives a fetch sequence.
#[derive(Debug)]
pub(crate) struct Container {
    url: String,
    auth: ContainerAuth,
    timeout: Duration,
    max_body: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    TokenFile,
    Credentials,
}

/// One fetch sequence: the token file (if configured), then the credentials.
#[derive(Debug)]
pub(crate) struct ContainerSequence {
    phase: Phase,
    /// The token this sequence sends, once known.
    token: Option<Secret>,
}

impl Container {
    pub(crate) fn new(source: &ContainerSource, config: &Config) -> Self {
        Container {
            url: source.uri.clone(),
            auth: source.auth.clone(),
            timeout: source.timeout,
            max_body: config.max_body_bytes,
        }
    }

    pub(crate) fn credentials_step(&self) -> Step {
        Step::ContainerCredentials {
            url: self.url.clone(),
        }
    }

    fn token_file_step(path: &str) -> Step {
        Step::ContainerTokenFile {
            path: String::from(path),
        }
    }

    pub(crate) fn begin(&self) -> ContainerSequence {
        match &self.auth {
            // Read afresh for every fetch: EKS rotates the file.
            ContainerAuth::TokenFile(_) => ContainerSequence {
                phase: Phase::TokenFile,
                token: None,
            },
            ContainerAuth::Token(token) => ContainerSequence {
                phase: Phase::Credentials,
                token: Some(token.clone()),
            },
            ContainerAuth::None => ContainerSequence {
                phase: Phase::Credentials,
                token: None,
            },
        }
    }

    pub(crate) fn next_action(&self, seq: &ContainerSequence) -> Action {
        match (seq.phase, &self.auth) {
            (Phase::TokenFile, ContainerAuth::TokenFile(path)) => Action::ReadFile(FileOp {
                step: Self::token_file_step(path),
                path: path.clone(),
                timeout: self.timeout,
            }),
            _ => Action::Http(Outgoing {
                step: self.credentials_step(),
                method: Method::Get,
                url: self.url.clone(),
                headers: match &seq.token {
                    Some(token) => vec![(AUTHORIZATION_HEADER, HeaderValue::Secret(token.clone()))],
                    None => Vec::new(),
                },
                timeout: self.timeout,
            }),
        }
    }

    fn token_file_path(&self) -> String {
        match &self.auth {
            ContainerAuth::TokenFile(path) => path.clone(),
            _ => String::new(),
        }
    }

    pub(crate) fn on_file(
        &self,
        seq: &mut ContainerSequence,
        contents: Result<Vec<u8>, FileError>,
    ) -> Progress {
        let path = self.token_file_path();
        let bytes = match contents {
            Ok(bytes) => bytes,
            Err(error) => return Progress::Fail(SourceError::TokenFileUnreadable { path, error }),
        };
        let invalid = |problem| {
            Progress::Fail(SourceError::InvalidAuthorizationToken {
                path: path.clone(),
                problem,
            })
        };
        if bytes.len() > self.max_body {
            return invalid(AuthTokenProblem::TooLarge {
                limit: self.max_body,
            });
        }
        let Ok(text) = String::from_utf8(bytes) else {
            return invalid(AuthTokenProblem::NotUtf8);
        };
        if let Err(problem) = check_auth_token(&text) {
            return invalid(problem);
        }
        seq.token = Some(Secret::new(text));
        seq.phase = Phase::Credentials;
        Progress::Continue
    }

    pub(crate) fn on_response(&self, seq: &mut ContainerSequence, response: &Response) -> Progress {
        let step = self.credentials_step();
        match response.status {
            200 => {
                match parse_credentials_redacting(&response.body, self.max_body, seq.token.as_ref())
                {
                    Ok(credentials) => Progress::Done(credentials),
                    Err(problem) => Progress::Retry(SourceError::BadResponse { step, problem }),
                }
            }
            429 => status_error(step, 429),
            status @ 400..=499 => {
                let (code, message) = self.error_body(&response.body, seq.token.as_ref());
                Progress::Fail(SourceError::Refused {
                    step,
                    status,
                    code,
                    message,
                })
            }
            status => status_error(step, status),
        }
    }

    pub(crate) fn on_failure(
        &self,
        seq: &ContainerSequence,
        failure: TransportFailure,
    ) -> Progress {
        match seq.phase {
            Phase::TokenFile => Progress::Fail(SourceError::TokenFileUnreadable {
                path: self.token_file_path(),
                error: FileError::TimedOut,
            }),
            Phase::Credentials => Progress::Retry(SourceError::Unreachable {
                step: self.credentials_step(),
                failure,
            }),
        }
    }

    /// `Code` and `Message` of a 4xx body, when it is the JSON the agents
    /// send; shortened, one line, and never containing the token we sent
    /// (a server that echoes the request must not put it in a log).
    fn error_body(&self, body: &[u8], token: Option<&Secret>) -> (Option<String>, Option<String>) {
        #[derive(Deserialize)]
        struct ErrorBody {
            #[serde(rename = "Code", alias = "code")]
            code: Option<String>,
            #[serde(rename = "Message", alias = "message")]
            message: Option<String>,
        }
        if body.len() > self.max_body {
            return (None, None);
        }
        let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) else {
            return (None, None);
        };
        let secrets = [token.map_or("", Secret::expose)];
        let clean = |text: Option<String>| {
            text.map(|t| quotable(&t, &secrets))
                .filter(|t| !t.is_empty())
        };
        (clean(parsed.code), clean(parsed.message))
    }
}
