//! The driver task's loop and the callers' slow path.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use credstate::{Credentials, Demand, FileError, Machine, SourceError, TransportFailure};
use credstate_adapter_support::{
    caller_demand, drain, read_file, report, sleep_until, ClockHandle, EventSink, Operation,
    Outcome, ProviderParts, SnapshotCell,
};
use tokio::sync::{watch, Notify};
use tracing::instrument::WithSubscriber;

use crate::transport::Transport;

/// What the provider's handles and its driver task share.
pub(crate) struct Shared {
    pub(crate) snapshot: SnapshotCell,
    pub(crate) clock: ClockHandle,
    state: Mutex<State>,
    /// Moves after every input the driver handles, and when the driver ends;
    /// parked callers ask again then.
    changed: watch::Sender<u64>,
    /// Wakes the sleeping driver: a caller left work, or shutdown.
    wake: Notify,
    /// Ends a request in flight at shutdown.
    shutdown: Notify,
    transport: Arc<dyn Transport>,
    /// The driver's sink, kept here while no driver runs so a new driver can
    /// take it over.
    sink: Mutex<Option<EventSink>>,
    dispatch: tracing::Dispatch,
}

struct State {
    machine: Machine,
    shutdown: bool,
    driver_running: bool,
}

impl Shared {
    pub(crate) fn new(parts: ProviderParts, transport: Arc<dyn Transport>) -> Self {
        Shared {
            snapshot: SnapshotCell::new(),
            clock: parts.clock,
            state: Mutex::new(State {
                machine: parts.machine,
                shutdown: false,
                driver_running: false,
            }),
            changed: watch::Sender::new(0),
            wake: Notify::new(),
            shutdown: Notify::new(),
            transport,
            sink: Mutex::new(Some(parts.sink)),
            dispatch: parts.dispatch,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No call into the machine runs user code with the lock held, so a
        // poisoned lock still guards a consistent machine.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_fetching(&self) -> bool {
        self.lock().machine.is_fetching()
    }

    /// What a demand now would hand out without waiting, without changing
    /// anything (no fetch starts).
    #[cfg_attr(not(feature = "aws-sdk"), allow(dead_code))]
    pub(crate) fn servable_now(&self) -> Option<Arc<Credentials>> {
        self.lock().machine.credentials(self.clock.now()).ok()
    }

    pub(crate) fn is_driver_running(&self) -> bool {
        self.lock().driver_running
    }

    pub(crate) fn shut_down(&self) {
        self.lock().shutdown = true;
        self.wake.notify_one();
        self.shutdown.notify_one();
    }

    /// Start the driver on `runtime` unless one runs (or the provider is
    /// shutting down).
    pub(crate) fn spawn_driver(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        let mut state = self.lock();
        self.spawn_driver_locked(&mut state, runtime);
    }

    fn spawn_driver_locked(self: &Arc<Self>, state: &mut State, runtime: &tokio::runtime::Handle) {
        if state.driver_running || state.shutdown {
            return;
        }
        state.driver_running = true;
        let shared = Arc::clone(self);
        let dispatch = self.dispatch.clone();
        runtime.spawn(run(shared).with_subscriber(dispatch));
    }

    /// The slow path: ask the machine, and while it says `Pending`, wait for
    /// the driver to handle the next input, then ask again.
    pub(crate) async fn demand(self: &Arc<Self>) -> Result<Arc<Credentials>, SourceError> {
        loop {
            let mut changed = {
                let mut state = self.lock();
                // A driver lost with its runtime is replaced on the caller's.
                if !state.driver_running {
                    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                        self.spawn_driver_locked(&mut state, &runtime);
                    }
                }
                let asked = caller_demand(&mut state.machine, &self.snapshot, self.clock.now());
                let changed = self.changed.subscribe();
                drop(state);
                if asked.wake_driver {
                    self.wake.notify_one();
                }
                match asked.demand {
                    Demand::Ready(credentials) => return Ok(credentials),
                    Demand::Rejected(cause) => return Err(cause),
                    // Pending, and whatever a newer core may add: wait, ask again.
                    _ => changed,
                }
            };
            // Subscribed under the lock, so no change after our demand is
            // missed. An error means the provider is gone, which cannot
            // happen while we borrow it; asking again is harmless anyway.
            let _ = changed.changed().await;
        }
    }

    /// After the driver handled an input: publish, let parked callers ask again.
    fn handled(&self, state: MutexGuard<'_, State>) {
        self.snapshot.publish(&state.machine);
        self.changed
            .send_modify(|generation| *generation = generation.wrapping_add(1));
        drop(state);
    }
}

/// Marks the driver as gone however its task ends (shutdown, panic, or its
/// runtime shutting down), hands the sink back, and wakes parked callers so
/// one of them can start a new driver.
struct RunningGuard {
    shared: Arc<Shared>,
    sink: Option<EventSink>,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        *self
            .shared
            .sink
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = self.sink.take();
        self.shared.lock().driver_running = false;
        self.shared
            .changed
            .send_modify(|generation| *generation = generation.wrapping_add(1));
    }
}

/// The driver: drain the machine, perform its requests, sleep until its
/// deadline or a caller's demand; until the provider is dropped.
async fn run(shared: Arc<Shared>) {
    let sink = shared
        .sink
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let mut guard = RunningGuard {
        shared: Arc::clone(&shared),
        sink,
    };
    loop {
        let drained = {
            let mut state = shared.lock();
            if state.shutdown {
                return;
            }
            let drained = drain(&mut state.machine, shared.clock.now());
            shared.handled(state);
            drained
        };
        if let Some(sink) = &mut guard.sink {
            sink.deliver(drained.events);
        }

        if !drained.operations.is_empty() {
            for operation in drained.operations {
                tokio::select! {
                    biased;
                    () = shared.shutdown.notified() => return,
                    () = perform(&shared, operation) => {}
                }
            }
            continue;
        }

        let pause = sleep_until(shared.clock.now(), drained.wake_at);
        if !pause.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shared.wake.notified() => {}
            }
        }
        let mut state = shared.lock();
        let now = shared.clock.now();
        state.machine.handle_timeout(now);
    }
}

/// Perform one operation within its deadline and report the outcome.
async fn perform(shared: &Shared, operation: Operation) {
    let outcome = match operation {
        Operation::Send(request) => {
            let answer = tokio::time::timeout(request.timeout, shared.transport.send(&request))
                .await
                .unwrap_or(Err(TransportFailure::TimedOut));
            Outcome::Sent(request.id, answer)
        }
        Operation::ReadFile(read) => {
            let (id, timeout) = (read.id, read.timeout);
            // File IO blocks: run it on tokio's blocking pool.
            let reading = tokio::task::spawn_blocking(move || read_file(&read));
            let contents = match tokio::time::timeout(timeout, reading).await {
                Ok(Ok(contents)) => contents,
                Ok(Err(_)) => Err(FileError::Other("the file read task failed".into())),
                Err(_) => Err(FileError::TimedOut),
            };
            Outcome::Read(id, contents)
        }
        // An operation a newer support crate knows and this driver does not:
        // the machine times it out like an unanswered request.
        _ => return,
    };
    let mut state = shared.lock();
    report(&mut state.machine, outcome, shared.clock.now());
    shared.handled(state);
}
