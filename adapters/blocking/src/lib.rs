//! # credstate-blocking
//!
//! Valid AWS temporary credentials from the EC2 instance metadata service or
//! a container endpoint (ECS, EKS Pod Identity),
//! for blocking code: the [`credstate`] machine run by one background thread.
//!
//! ```no_run
//! use credstate_blocking::Provider;
//!
//! let provider = Provider::from_env()?;
//! let credentials = provider.credentials()?;
//! println!("{}", credentials.access_key_id);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`Provider::credentials`] answers from a published snapshot while the
//!   held credentials are outside the mandatory refresh window: a coarse
//!   wall-clock read, a thread-local lookup and an `Arc` clone, with no lock,
//!   no IO and no write to memory shared with other threads. (Each thread
//!   keeps its own `Arc` of the current credentials, made on its first call
//!   after they change; the `Arc`s of different threads are equal, not
//!   identical.)
//! - Refresh ahead of expiry runs on the provider's thread, which sleeps until
//!   the machine's next deadline (at most a minute, so a jump of the wall clock
//!   is noticed) or until a caller needs it.
//! - Cold callers, and callers in the mandatory window, wait for the one fetch
//!   in flight, which the machine's per-request timeouts bound.
//! - The thread ends, and is joined, when the last clone of the provider is
//!   dropped; it never keeps the process alive.
//! - Events go to `tracing` (target `credstate`), identical ones at most once
//!   per [`Builder::log_interval`]; [`Builder::on_event`] sees all of them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod driver;
mod transport;

use std::fmt;
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};

use credstate::{Config, ConfigError, Credentials, SourceError};
use credstate_adapter_support::{process_machine_config, ProviderSettings, SnapshotCell};

pub use credstate_adapter_support::{Clock, EnvironmentError, ManualClock, SystemClock};
pub use transport::{Transport, UreqTransport};

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
    /// The endpoint is `https` but the default transport was built without
    /// the `tls` feature.
    #[error("the source {endpoint} is https, which needs credstate-blocking's `tls` feature")]
    TlsNotEnabled {
        /// The configured endpoint.
        endpoint: String,
    },
    /// The background thread could not be started.
    #[error("could not start the credstate refresh thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Keeps one source's credentials valid for any number of threads.
///
/// `Send + Sync`, and cheap to clone: clones share the background thread,
/// which stops when the last clone is dropped. That drop joins the thread, so
/// it waits for a request in flight, which its timeout bounds.
#[derive(Clone)]
pub struct Provider {
    /// The state callers read, one pointer away for the hot path.
    shared: Arc<Shared>,
    /// Joins the thread when the last clone drops.
    handle: Arc<Handle>,
}

/// Owned by the provider's clones; dropping the last one stops the thread.
struct Handle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Provider {
    /// A provider with this configuration, the default transport, the system
    /// clock and a seed that differs per process.
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
    /// Returns at once with the cached credentials outside the mandatory
    /// refresh window; otherwise waits for the fetch in flight (bounded by
    /// the configured timeouts) and returns its credentials, the still-usable
    /// ones it may fall back to, or the typed reason none can be handed out.
    pub fn credentials(&self) -> Result<Arc<Credentials>, SourceError> {
        let shared = &self.shared;
        if let Some(credentials) = shared.snapshot.servable_at(shared.clock.now()) {
            return Ok(credentials);
        }
        shared.demand()
    }

    /// Whether a fetch sequence is in progress right now.
    #[must_use]
    pub fn is_fetching(&self) -> bool {
        self.handle.shared.is_fetching()
    }

    /// A probe that tells whether the background thread still runs, without
    /// keeping it (or the provider) alive.
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

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shut_down();
        if let Some(thread) = self.thread.take() {
            // The last handle can only be dropped on the driver's own thread
            // by an event hook that held one; joining would deadlock, and the
            // thread is about to see the shutdown anyway.
            if thread.thread().id() != thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// Tells whether a provider's background thread still runs.
#[derive(Clone, Debug)]
pub struct DriverProbe {
    shared: Weak<Shared>,
}

impl DriverProbe {
    /// Whether the background thread, or any handle, is still alive.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.shared.strong_count() > 0
    }
}

/// Builds a [`Provider`]; every setting has a default.
#[derive(Default)]
pub struct Builder {
    settings: ProviderSettings,
    transport: Option<Box<dyn Transport>>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.settings.fmt_builder(f, self.transport.is_some())
    }
}

impl Builder {
    credstate_adapter_support::provider_settings_setters!(hook_runs_on: "the background thread");

    /// Bring your own transport (default: [`UreqTransport`]).
    #[must_use]
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.transport = Some(Box::new(transport));
        self
    }

    /// Start the provider's background thread.
    ///
    /// The thread logs to the `tracing` subscriber that is current here.
    pub fn build(self) -> Result<Provider, BuildError> {
        let transport: Box<dyn Transport> = match self.transport {
            Some(transport) => transport,
            None => {
                let needs_tls = self
                    .settings
                    .https_source()
                    .filter(|_| !cfg!(feature = "tls"));
                if let Some(url) = needs_tls {
                    return Err(BuildError::TlsNotEnabled {
                        endpoint: url.to_owned(),
                    });
                }
                Box::new(UreqTransport::new())
            }
        };
        let parts = self.settings.into_parts()?;
        let shared = Arc::new(Shared::new(parts.machine, parts.clock, SnapshotCell::new()));
        let (sink, dispatch) = (parts.sink, parts.dispatch);
        let driver_shared = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("credstate-refresh".into())
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    driver::run(&driver_shared, transport, sink);
                });
            })
            .map_err(BuildError::Spawn)?;
        Ok(Provider {
            shared: Arc::clone(&shared),
            handle: Arc::new(Handle {
                shared,
                thread: Some(thread),
            }),
        })
    }
}
