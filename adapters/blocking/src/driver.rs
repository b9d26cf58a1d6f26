//! The background thread's loop and the callers' slow path.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use credstate::{Credentials, Demand, Machine, Request, Response, SourceError, TransportFailure};
use credstate_adapter_support::{
    caller_demand, drain, read_file, report, sleep_until, ClockHandle, EventSink, Operation,
    Outcome, SnapshotCell,
};

use crate::transport::Transport;

/// A parked caller asks the machine again at least this often, so that no
/// missed wake-up can park it for longer; asking again is always harmless.
const PARK_LIMIT: Duration = Duration::from_secs(1);

/// What the provider's handles and its thread share.
pub(crate) struct Shared {
    pub(crate) snapshot: SnapshotCell,
    pub(crate) clock: ClockHandle,
    state: Mutex<State>,
    /// Parked callers wait here for `State::generation` to move.
    changed: Condvar,
    /// The driver waits here for its deadline, a caller's demand or shutdown.
    wake: Condvar,
}

struct State {
    machine: Machine,
    /// Counts the inputs the driver has handled; parked callers ask again
    /// when it moves.
    generation: u64,
    /// A caller left work for the driver (a fetch to start, events to drain).
    wake_requested: bool,
    shutdown: bool,
}

impl Shared {
    pub(crate) fn new(machine: Machine, clock: ClockHandle, snapshot: SnapshotCell) -> Self {
        Shared {
            snapshot,
            clock,
            state: Mutex::new(State {
                machine,
                generation: 0,
                wake_requested: false,
                shutdown: false,
            }),
            changed: Condvar::new(),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The machine is consistent between calls, and no call into it holds
        // the lock across user code, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_fetching(&self) -> bool {
        self.lock().machine.is_fetching()
    }

    pub(crate) fn shut_down(&self) {
        self.lock().shutdown = true;
        self.wake.notify_all();
    }

    /// The slow path: ask the machine, and while it says `Pending`, wait for
    /// the driver to handle the next input, then ask again.
    pub(crate) fn demand(&self) -> Result<Arc<Credentials>, SourceError> {
        let mut state = self.lock();
        loop {
            let asked = caller_demand(&mut state.machine, &self.snapshot, self.clock.now());
            if asked.wake_driver {
                state.wake_requested = true;
                self.wake.notify_one();
            }
            match asked.demand {
                Demand::Ready(credentials) => return Ok(credentials),
                Demand::Rejected(cause) => return Err(cause),
                // Pending, and whatever a newer core may add: wait and ask again.
                _ => {
                    let seen = state.generation;
                    while state.generation == seen {
                        let (guard, waited) = self
                            .changed
                            .wait_timeout(state, PARK_LIMIT)
                            .unwrap_or_else(PoisonError::into_inner);
                        state = guard;
                        if waited.timed_out() {
                            break;
                        }
                    }
                }
            }
        }
    }

    /// After an input: publish, and let parked callers ask again.
    fn handled(&self, mut state: MutexGuard<'_, State>) {
        self.snapshot.publish(&state.machine);
        state.generation = state.generation.wrapping_add(1);
        drop(state);
        self.changed.notify_all();
    }
}

/// The background thread: drain the machine, perform its requests, sleep
/// until its deadline or a caller's demand; until the provider is dropped.
pub(crate) fn run(shared: &Shared, mut transport: Box<dyn Transport>, mut sink: EventSink) {
    let mut state = shared.lock();
    loop {
        if state.shutdown {
            return;
        }
        let drained = drain(&mut state.machine, shared.clock.now());
        shared.handled(state);
        sink.deliver(drained.events);

        if !drained.operations.is_empty() {
            for operation in drained.operations {
                perform(shared, transport.as_mut(), operation);
            }
            state = shared.lock();
            continue;
        }

        state = shared.lock();
        if !state.wake_requested && !state.shutdown {
            let pause = sleep_until(shared.clock.now(), drained.wake_at);
            if !pause.is_zero() {
                state = shared
                    .wake
                    .wait_timeout(state, pause)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        state.wake_requested = false;
        state.machine.handle_timeout(shared.clock.now());
    }
}

/// Perform one operation and report its outcome to the machine.
fn perform(shared: &Shared, transport: &mut dyn Transport, operation: Operation) {
    let outcome = match operation {
        Operation::Send(request) => Outcome::Sent(request.id, send(transport, &request)),
        Operation::ReadFile(read) => Outcome::Read(read.id, read_file(&read)),
        // An operation a newer support crate knows and this driver does not:
        // the machine times it out like an unanswered request.
        _ => return,
    };
    let mut state = shared.lock();
    report(&mut state.machine, outcome, shared.clock.now());
    shared.handled(state);
}

/// Send one request; a panicking transport counts as a broken connection
/// rather than taking the thread, and every caller's credentials, down.
fn send(transport: &mut dyn Transport, request: &Request) -> Result<Response, TransportFailure> {
    match catch_unwind(AssertUnwindSafe(|| transport.send(request))) {
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::error!(
                target: "credstate",
                step = %request.step,
                "the transport panicked; treating the request as a broken connection"
            );
            Err(TransportFailure::Reset)
        }
    }
}
