//! Performing the machine's requests: the [`Transport`] trait and the default
//! HTTP client.

use std::fmt;
use std::io::{self, Read};

use credstate::{Method, Request, Response, TransportFailure};
use ureq::RequestExt;

/// Performs the machine's HTTP requests, one at a time, on the provider's
/// background thread.
///
/// An implementation must
/// - finish within [`Request::timeout`], counted from connecting through the
///   last body byte, and report [`TransportFailure::TimedOut`] otherwise (the
///   machine gives up on the request at that deadline anyway, but a transport
///   that hangs holds up the provider's thread);
/// - read at most [`Request::max_body_bytes`] + 1 body bytes;
/// - use no proxy and follow no redirect;
/// - report any HTTP status as a [`Response`], and only failures below HTTP
///   as a [`TransportFailure`].
///
/// Closures `FnMut(&Request) -> Result<Response, TransportFailure>` are
/// transports, which makes scripted transports for tests one-liners.
pub trait Transport: Send + 'static {
    /// Perform `request`.
    fn send(&mut self, request: &Request) -> Result<Response, TransportFailure>;
}

impl<F> Transport for F
where
    F: FnMut(&Request) -> Result<Response, TransportFailure> + Send + 'static,
{
    fn send(&mut self, request: &Request) -> Result<Response, TransportFailure> {
        self(request)
    }
}

/// The default transport: a `ureq` agent with no proxy, no redirects, no
/// connection reuse, and each request's timeout as its end-to-end deadline.
///
/// `https` URLs need the crate's `tls` feature.
pub struct UreqTransport {
    agent: ureq::Agent,
}

impl UreqTransport {
    /// The transport described above.
    #[must_use]
    pub fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .proxy(None)
            .max_redirects(0)
            .http_status_as_error(false)
            // A link-local service is cheap to reconnect to, and a fresh
            // connection cannot have been closed under us while idle.
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .user_agent(concat!("credstate/", env!("CARGO_PKG_VERSION")))
            .build();
        UreqTransport {
            agent: ureq::Agent::new_with_config(config),
        }
    }
}

impl Default for UreqTransport {
    fn default() -> Self {
        UreqTransport::new()
    }
}

impl fmt::Debug for UreqTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UreqTransport").finish_non_exhaustive()
    }
}

impl Transport for UreqTransport {
    fn send(&mut self, request: &Request) -> Result<Response, TransportFailure> {
        let method = match request.method {
            Method::Get => "GET",
            Method::Put => "PUT",
            // A method this transport does not know cannot be sent; the
            // machine then treats the attempt like any broken connection.
            _ => return Err(TransportFailure::Reset),
        };
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(request.url.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.expose());
        }
        // A URL or header the http crate refuses cannot reach the server.
        let http_request = builder
            .body(())
            .map_err(|_| TransportFailure::ConnectRefused)?;
        let mut response = http_request
            .with_agent(&self.agent)
            .configure()
            .timeout_global(Some(request.timeout))
            .run()
            .map_err(|error| failure_of(&error))?;

        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        let limit = u64::try_from(request.max_body_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let mut body = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(limit)
            .read_to_end(&mut body)
            .map_err(|error| failure_of_io(&error))?;
        let mut out = Response::new(status, body);
        out.headers = headers;
        Ok(out)
    }
}

fn failure_of(error: &ureq::Error) -> TransportFailure {
    match error {
        ureq::Error::Timeout(_) => TransportFailure::TimedOut,
        ureq::Error::Io(io) => failure_of_io(io),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::BadUri(_) => {
            TransportFailure::ConnectRefused
        }
        _ => TransportFailure::Reset,
    }
}

fn failure_of_io(error: &io::Error) -> TransportFailure {
    match error.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportFailure::TimedOut,
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::AddrNotAvailable
        | io::ErrorKind::NotFound => TransportFailure::ConnectRefused,
        _ => match error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        {
            Some(inner) => failure_of(inner),
            None => TransportFailure::Reset,
        },
    }
}
