//! Test support for credstate: the simulated IMDS, the simulation harness
//! that drives the machine (and the seed policies) over simulated days, and
//! the mock IMDS HTTP server.

pub mod mock_imds;
pub mod scenario;
pub mod sim;
