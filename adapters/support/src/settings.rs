//! What every adapter's `Builder` configures besides its transport, and how
//! those settings become a running machine's parts.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use credstate::{Config, ConfigError, Event, Machine};

use crate::clock::{default_seed, Clock, ClockHandle};
use crate::log::{EventHook, EventLog, EventSink, DEFAULT_LOG_INTERVAL};

/// The settings an adapter's `Builder` shares with every other adapter's:
/// the configuration, the seed, the clock, the event hook and the log
/// interval. Each has a default, so the builders have one too.
pub struct ProviderSettings {
    config: Config,
    seed: Option<u64>,
    clock: ClockHandle,
    hook: Option<EventHook>,
    log_interval: Duration,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        ProviderSettings {
            config: Config::default(),
            seed: None,
            clock: ClockHandle::system(),
            hook: None,
            log_interval: DEFAULT_LOG_INTERVAL,
        }
    }
}

/// What a provider runs on, made from [`ProviderSettings`].
#[derive(Debug)]
#[non_exhaustive]
pub struct ProviderParts {
    /// The machine, configured and seeded.
    pub machine: Machine,
    /// Where "now" comes from.
    pub clock: ClockHandle,
    /// Where the driver delivers the machine's events.
    pub sink: EventSink,
    /// The `tracing` dispatcher current when the provider was built: the
    /// driver logs to it, whichever thread it runs on.
    pub dispatch: tracing::Dispatch,
}

impl ProviderSettings {
    /// Use this configuration.
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    /// Seed the machine's jitter with `seed` instead of [`default_seed`].
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = Some(seed);
    }

    /// Read "now" from `clock` instead of the system clock.
    pub fn set_clock(&mut self, clock: impl Clock) {
        self.clock = ClockHandle::injected(clock);
    }

    /// Hand every event to `hook`, unthrottled.
    pub fn set_hook(&mut self, hook: impl Fn(&Event) + Send + Sync + 'static) {
        self.hook = Some(Arc::new(hook));
    }

    /// Log identical events at most once per `interval`.
    pub fn set_log_interval(&mut self, interval: Duration) {
        self.log_interval = interval;
    }

    /// The configured source's URL when it is `https`, which needs a
    /// TLS-capable transport.
    #[must_use]
    pub fn https_source(&self) -> Option<&str> {
        crate::https_source(&self.config)
    }

    /// The machine (refused if the configuration cannot work), the clock, the
    /// event sink, and the `tracing` dispatcher current here.
    pub fn into_parts(self) -> Result<ProviderParts, ConfigError> {
        let seed = self.seed.unwrap_or_else(default_seed);
        Ok(ProviderParts {
            machine: Machine::new(self.config, seed)?,
            clock: self.clock,
            sink: EventSink::new(EventLog::new(self.log_interval), self.hook),
            dispatch: tracing::dispatcher::get_default(Clone::clone),
        })
    }

    /// `Debug` for an adapter's builder holding these settings; the hook and
    /// a custom transport are only said to be there.
    pub fn fmt_builder(&self, f: &mut fmt::Formatter<'_>, custom_transport: bool) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("custom_transport", &custom_transport)
            .field("seed", &self.seed)
            .field("log_interval", &self.log_interval)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("config", &self.config)
            .field("seed", &self.seed)
            .field("clock", &self.clock)
            .field("hook", &self.hook.as_ref().map(|_| "<fn>"))
            .field("log_interval", &self.log_interval)
            .finish()
    }
}

/// The setters of [`ProviderSettings`] as an adapter builder's public,
/// chainable methods, over the builder's `settings` field; `$runs_on` says
/// where the adapter calls the event hook ("the background thread").
#[doc(hidden)]
#[macro_export]
macro_rules! provider_settings_setters {
    (hook_runs_on: $runs_on:literal) => {
        /// The machine's configuration (default: `Config::default()`).
        #[must_use]
        pub fn config(mut self, config: ::credstate::Config) -> Self {
            self.settings.set_config(config);
            self
        }

        /// The seed of the machine's jitter (default: from time and process id).
        #[must_use]
        pub fn seed(mut self, seed: u64) -> Self {
            self.settings.set_seed(seed);
            self
        }

        /// Where "now" comes from (default: [`SystemClock`]).
        #[must_use]
        pub fn clock(mut self, clock: impl $crate::Clock) -> Self {
            self.settings.set_clock(clock);
            self
        }

        #[doc = concat!("Call `hook` with every event, unthrottled, on ", $runs_on, ".")]
        /// It must return quickly and must not hold a clone of the provider.
        #[must_use]
        pub fn on_event(
            mut self,
            hook: impl Fn(&::credstate::Event) + Send + Sync + 'static,
        ) -> Self {
            self.settings.set_hook(hook);
            self
        }

        /// Log identical events at most once per `interval` (default: 60 s;
        /// zero logs every event).
        #[must_use]
        pub fn log_interval(mut self, interval: ::std::time::Duration) -> Self {
            self.settings.set_log_interval(interval);
            self
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use credstate::Timestamp;

    /// Settings with the default configuration but for `attempts`.
    fn settings_with_attempts(attempts: u32) -> ProviderSettings {
        let mut config = Config::default();
        config.attempts = attempts;
        let mut settings = ProviderSettings::default();
        settings.set_config(config);
        settings
    }

    #[test]
    fn the_parts_carry_the_configured_clock_and_a_machine_of_the_configuration() {
        let mut settings = settings_with_attempts(7);
        settings.set_seed(5);
        settings.set_clock(ManualClock::at(Timestamp::from_unix_secs(42)));
        let parts = settings.into_parts().unwrap();
        assert_eq!(parts.machine.config().attempts, 7);
        assert_eq!(parts.clock.now(), Timestamp::from_unix_secs(42));
    }

    #[test]
    fn a_configuration_that_cannot_work_is_refused_with_its_field() {
        let error = settings_with_attempts(0).into_parts().unwrap_err();
        assert_eq!(error.field, "attempts");
    }

    #[test]
    fn only_an_https_source_is_named_as_needing_tls() {
        let mut settings = ProviderSettings::default();
        assert_eq!(settings.https_source(), None);
        let mut config = Config::default();
        config.endpoint = "https://imds.example".into();
        settings.set_config(config);
        assert_eq!(settings.https_source(), Some("https://imds.example"));
    }
}
