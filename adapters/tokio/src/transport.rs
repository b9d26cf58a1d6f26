//! Performing the machine's requests: the async [`Transport`] trait and the
//! default hyper client.

use std::io;

use async_trait::async_trait;
use bytes::Bytes;
use credstate::{Method, Request, Response, TransportFailure};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Performs the machine's HTTP requests on the provider's driver task.
///
/// The driver bounds every call by [`Request::timeout`] with a tokio timer and
/// drops the future when it expires, so an implementation need not time out
/// itself, but must be cancel-safe in that sense (dropping it abandons the
/// request). It must read at most [`Request::max_body_bytes`] + 1 body bytes,
/// use no proxy, follow no redirect, and report any HTTP status as a
/// [`Response`] and only failures below HTTP as a [`TransportFailure`].
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Perform `request`.
    async fn send(&self, request: &Request) -> Result<Response, TransportFailure>;
}

/// Plain closures `Fn(&Request) -> Result<Response, TransportFailure>` are
/// transports that answer at once, which makes scripted transports for tests
/// one-liners.
#[async_trait]
impl<F> Transport for F
where
    F: Fn(&Request) -> Result<Response, TransportFailure> + Send + Sync + 'static,
{
    async fn send(&self, request: &Request) -> Result<Response, TransportFailure> {
        self(request)
    }
}

/// The default transport: hyper's HTTP/1 client on a fresh TCP connection per
/// request (no pool, no proxy, no redirects, no TLS).
#[derive(Clone, Copy, Debug, Default)]
pub struct HyperTransport;

#[async_trait]
impl Transport for HyperTransport {
    async fn send(&self, request: &Request) -> Result<Response, TransportFailure> {
        let uri: http::Uri = request
            .url
            .parse()
            .map_err(|_| TransportFailure::ConnectRefused)?;
        if uri.scheme_str() != Some("http") {
            // https needs TLS, which this transport does not do; the builder
            // refuses such endpoints, so only a custom URL gets here.
            return Err(TransportFailure::ConnectRefused);
        }
        let authority = uri
            .authority()
            .ok_or(TransportFailure::ConnectRefused)?
            .clone();
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        let path = uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_owned();

        let stream = TcpStream::connect((host, port))
            .await
            .map_err(|error| connect_failure(&error))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| TransportFailure::Reset)?;

        let mut builder = http::Request::builder()
            .method(match request.method {
                Method::Get => http::Method::GET,
                Method::Put => http::Method::PUT,
                _ => return Err(TransportFailure::Reset),
            })
            .uri(path)
            .header(http::header::HOST, authority.as_str());
        if request.method == Method::Put {
            builder = builder.header(http::header::CONTENT_LENGTH, "0");
        }
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.expose());
        }
        let http_request = builder
            .body(Empty::<Bytes>::new())
            .map_err(|_| TransportFailure::ConnectRefused)?;

        let limit = request.max_body_bytes.saturating_add(1);
        let exchange = async move {
            let response = sender
                .send_request(http_request)
                .await
                .map_err(|_| TransportFailure::Reset)?;
            let (parts, mut body) = response.into_parts();
            let mut bytes = Vec::new();
            while bytes.len() < limit {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            let room = limit - bytes.len();
                            bytes.extend_from_slice(&data[..data.len().min(room)]);
                        }
                    }
                    Some(Err(_)) => return Err(TransportFailure::Reset),
                    None => break,
                }
            }
            let mut out = Response::new(parts.status.as_u16(), bytes);
            out.headers = parts
                .headers
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                })
                .collect();
            Ok(out)
        };

        // The connection future does the IO; it is driven here rather than
        // spawned, so dropping this future (the driver's timeout) closes the
        // socket instead of leaving a task behind.
        tokio::pin!(exchange);
        tokio::pin!(connection);
        let mut connection_done = false;
        loop {
            tokio::select! {
                outcome = &mut exchange => return outcome,
                _ = &mut connection, if !connection_done => connection_done = true,
            }
        }
    }
}

fn connect_failure(error: &io::Error) -> TransportFailure {
    match error.kind() {
        io::ErrorKind::TimedOut => TransportFailure::TimedOut,
        _ => TransportFailure::ConnectRefused,
    }
}
