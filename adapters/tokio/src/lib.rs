//! # credstate-tokio
//!
//! Valid AWS temporary credentials from the EC2 instance metadata service or
//! a container endpoint (ECS, EKS Pod Identity),
//! for async code: the [`credstate`] machine run by one tokio task.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use credstate_tokio::Provider;
//!
//! let provider = Provider::from_env()?;
//! let credentials = provider.credentials().await?;
//! println!("{}", credentials.access_key_id);
//! # Ok(()) }
//! ```
//!
//! - [`Provider::credentials`] awaits nothing while the held credentials are
//!   outside the mandatory refresh window: it answers from a published
//!   snapshot with a coarse wall-clock read, a thread-local lookup and an
//!   `Arc` clone, with no lock and no write to memory shared with other
//!   threads. (Each worker thread keeps its own `Arc` of the current
//!   credentials; the `Arc`s of different threads are equal, not identical.)
//! - One driver task, spawned on the runtime the provider is built in (which
//!   needs its IO and time drivers enabled), owns
//!   the refresh: it sleeps until the machine's next deadline (at most a
//!   minute, so a jump of the wall clock is noticed) or until a caller needs
//!   it, and bounds every request by the machine's per-attempt timeout.
//! - Concurrent cold callers all wait for the one fetch.
//! - The task ends when the last clone of the provider is dropped. If its
//!   runtime shuts down first, the next caller starts a new driver on its own
//!   runtime.
//! - Events go to `tracing` (target `credstate`), identical ones at most once
//!   per [`Builder::log_interval`]; [`Builder::on_event`] sees all of them.
//! - With the `aws-sdk` feature, the provider implements
//!   `aws_credential_types::provider::ProvideCredentials`, so it can be handed
//!   to any aws-sdk-rust client's `credentials_provider(...)`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "aws-sdk")]
mod aws_sdk;
mod driver;
mod transport;

use std::fmt;
use std::sync::{Arc, Weak};

use credstate::{Config, ConfigError, Credentials, SourceError};
use credstate_adapter_support::{process_machine_config, ProviderSettings};

pub use async_trait::async_trait;
pub use credstate_adapter_support::{Clock, EnvironmentError, ManualClock, SystemClock};
pub use transport::{HyperTransport, Transport};

use driver::Shared;

/// Why a provider could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The environment or the AWS config file holds an invalid value (the
    /// error names the key and where it came from), or the file is unreadable.
    #[error(transparent)]
    Environment(#[from] EnvironmentError),
    /// The endpoint is `https`, which the default transport does not support.
    #[error("the source {endpoint} is https, which the default transport does not support; bring a TLS-capable Transport")]
    TlsNotSupported {
        /// The configured endpoint.
        endpoint: String,
    },
    /// There is no tokio runtime to run the driver task on.
    #[error("credstate-tokio needs a tokio runtime: build the provider inside one, or pass Builder::runtime")]
    NoRuntime,
}

/// Keeps one source's credentials valid for any number of tasks.
///
/// `Send + Sync`, and cheap to clone: clones share the driver task, which
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct Provider {
    /// The state callers read, one pointer away for the hot path.
    shared: Arc<Shared>,
    /// Stops the driver when the last clone drops.
    handle: Arc<Handle>,
}

/// Owned by the provider's clones; dropping the last one stops the driver.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shut_down();
    }
}

impl Provider {
    /// A provider with this configuration, the default transport, the system
    /// clock and a seed that differs per process, driven on the current
    /// tokio runtime.
    pub fn new(config: Config) -> Result<Provider, BuildError> {
        Provider::builder().config(config).build()
    }

    /// A provider configured the way every AWS SDK is: from this process's
    /// environment (`AWS_EC2_METADATA_*`, `AWS_CONTAINER_*`, `AWS_PROFILE`, …)
    /// and the AWS config file (`AWS_CONFIG_FILE`, default `~/.aws/config`),
    /// so the same binary runs unchanged on EC2, ECS and EKS.
    pub fn from_env() -> Result<Provider, BuildError> {
        Provider::new(process_machine_config()?)
    }

    /// Everything configurable.
    #[must_use]
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The current credentials.
    ///
    /// Completes without awaiting while the cached credentials are outside
    /// the mandatory refresh window; otherwise waits for the fetch in flight
    /// (bounded by the configured timeouts) and returns its credentials, the
    /// still-usable ones it may fall back to, or the typed reason none can be
    /// handed out.
    pub async fn credentials(&self) -> Result<Arc<Credentials>, SourceError> {
        let shared = &self.shared;
        if let Some(credentials) = shared.snapshot.servable_at(shared.clock.now()) {
            return Ok(credentials);
        }
        // Boxed so the slow path's large state does not make every hot-path
        // future large: callers move the future before polling it.
        Box::pin(shared.demand()).await
    }

    /// Whether a fetch sequence is in progress right now.
    #[must_use]
    pub fn is_fetching(&self) -> bool {
        self.handle.shared.is_fetching()
    }

    /// A probe that tells whether the driver task still runs, without keeping
    /// it (or the provider) alive.
    #[must_use]
    pub fn driver_probe(&self) -> DriverProbe {
        DriverProbe {
            shared: Arc::downgrade(&self.handle.shared),
        }
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("snapshot", &self.handle.shared.snapshot)
            .finish_non_exhaustive()
    }
}

/// Tells whether a provider's driver task still runs.
#[derive(Clone, Debug)]
pub struct DriverProbe {
    shared: Weak<Shared>,
}

impl DriverProbe {
    /// Whether the driver task is running (it ends soon after the last
    /// handle is dropped).
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.shared
            .upgrade()
            .is_some_and(|shared| shared.is_driver_running())
    }
}

/// Builds a [`Provider`]; every setting has a default.
#[derive(Default)]
pub struct Builder {
    settings: ProviderSettings,
    transport: Option<Arc<dyn Transport>>,
    runtime: Option<tokio::runtime::Handle>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.settings.fmt_builder(f, self.transport.is_some())
    }
}

impl Builder {
    credstate_adapter_support::provider_settings_setters!(hook_runs_on: "the driver task");

    /// Bring your own transport (default: [`HyperTransport`]).
    #[must_use]
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// Run the driver on this runtime (default: the current one).
    #[must_use]
    pub fn runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Spawn the driver task. It logs to the `tracing` subscriber that is
    /// current here.
    pub fn build(self) -> Result<Provider, BuildError> {
        let runtime = match self.runtime {
            Some(runtime) => runtime,
            None => tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?,
        };
        let transport: Arc<dyn Transport> = match self.transport {
            Some(transport) => transport,
            None => {
                if let Some(url) = self.settings.https_source() {
                    return Err(BuildError::TlsNotSupported {
                        endpoint: url.to_owned(),
                    });
                }
                Arc::new(HyperTransport)
            }
        };
        let shared = Arc::new(Shared::new(self.settings.into_parts()?, transport));
        shared.spawn_driver(&runtime);
        Ok(Provider {
            shared: Arc::clone(&shared),
            handle: Arc::new(Handle { shared }),
        })
    }
}
