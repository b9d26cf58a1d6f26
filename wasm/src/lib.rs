//! # credstate-wasm
//!
//! The credstate machine for JavaScript hosts, through wasm-bindgen. The
//! host does the IO and owns the clock; this crate only translates between
//! the core's types and plain JavaScript objects:
//!
//! - times are numbers of milliseconds since the Unix epoch;
//! - a request to perform is `{ id, method, url, headers, timeoutMs,
//!   maxBodyBytes }`, with `headers` a plain `{ name: value }` object;
//! - a response is reported as `{ status, headers?, body? }`;
//! - a rejection is an `Error` whose `name` is the typed cause
//!   ([`credstate::SourceError::name`]) and whose message is the cause's
//!   readable text — never a secret.
//!
//! The npm package's high-level `fromInstanceMetadata` is a thin JavaScript
//! loop over [`CredentialsMachine`]; every credential decision stays in the
//! core.
#![cfg_attr(target_arch = "wasm32", no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use credstate::{
    Config, Credentials, Demand, Event, Machine, Output, Request, RequestId, Response, SourceError,
    Timestamp, TransportFailure, Unavailable,
};
use js_sys::{Array, Error, Object, Reflect, Uint8Array, JSON};

mod config;
use config::{set_field, whole_number, FieldError, FieldValue};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// A panic is a bug in the core or here; JavaScript sees it as a
/// `RuntimeError: unreachable` from the call that hit it. No message is
/// kept: formatting it would cost more .wasm than everything else together.
#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Credentials as the machine hands them out; `expiration` in epoch milliseconds. */
export interface MachineCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: number;
  accountId?: string;
}

/** An HTTP request the host must perform, then report with `handleResponse` or `handleFailure`. */
export interface MachineRequest {
  id: number;
  method: "GET" | "PUT";
  url: string;
  /** Header names and values; a value may be secret (the IMDS token): never log them. */
  headers: Record<string, string>;
  /** Deadline of this attempt, from connecting through the last body byte. */
  timeoutMs: number;
  /** Read at most this many body bytes plus one; larger bodies are rejected anyway. */
  maxBodyBytes: number;
}

/** The outcome of a request, for `handleResponse`. */
export interface MachineResponse {
  status: number;
  /** A plain object, a `Headers`, a `Map` or an array of `[name, value]` pairs. */
  headers?: Record<string, string> | Iterable<[string, string]>;
  body?: string | Uint8Array | ArrayBuffer;
}

/** How a request failed below HTTP, for `handleFailure`. */
export type MachineFailure = "ConnectRefused" | "TimedOut" | "Reset";

/** Something the machine decided or observed; `message` never carries a secret. */
export interface MachineEvent {
  /** A stable snake_case name, e.g. `fetch_failed`. */
  name: string;
  message: string;
  /** Whether the event reports trouble (worth a warning in logs). */
  warning: boolean;
  /** The typed cause, for events that carry one (e.g. `LikelyHopLimit`). */
  cause?: string;
}

/** The machine's answer to a caller asking for credentials. */
export type MachineDemand =
  | { type: "ready"; credentials: MachineCredentials }
  | { type: "pending" }
  | { type: "rejected"; error: Error };

/** The next thing the host must do; drain `poll` until `wakeAt` or `idle`. */
export type MachineOutput =
  | { type: "send"; request: MachineRequest }
  | { type: "event"; event: MachineEvent }
  | { type: "wakeAt"; at: number }
  | { type: "idle" };

/** Credentials callers may use without asking the machine, before `serveUntil`. */
export interface MachineSnapshot {
  credentials: MachineCredentials;
  serveUntil: number;
}

/** Fields of the core's `Config` (snake_case, durations as strings such as "250ms"). */
export type MachineConfig = Record<string, unknown>;
"#;

#[wasm_bindgen]
extern "C" {
    /// `MachineDemand` in TypeScript.
    #[wasm_bindgen(typescript_type = "MachineDemand")]
    pub type DemandJs;
    /// `MachineOutput` in TypeScript.
    #[wasm_bindgen(typescript_type = "MachineOutput")]
    pub type OutputJs;
    /// `MachineSnapshot` in TypeScript.
    #[wasm_bindgen(typescript_type = "MachineSnapshot")]
    pub type SnapshotJs;
    /// `MachineResponse` in TypeScript.
    #[wasm_bindgen(typescript_type = "MachineResponse")]
    pub type ResponseJs;
    /// `MachineFailure` in TypeScript.
    #[wasm_bindgen(typescript_type = "MachineFailure")]
    pub type FailureJs;
    /// `MachineConfig | string` in TypeScript.
    #[wasm_bindgen(typescript_type = "MachineConfig | string")]
    pub type ConfigJs;
}

/// Keeps one IMDS source's credentials valid; the JavaScript face of
/// [`credstate::Machine`], whose documentation teaches the run loop:
///
/// 1. `demand(now)` when a caller wants credentials: `ready`, `pending`
///    (ask again after the next input) or `rejected`.
/// 2. `poll(now)` until `wakeAt` or `idle`: perform each `send`, log each
///    `event`.
/// 3. Report outcomes with `handleResponse` / `handleFailure`, call
///    `handleTimeout` at the deadline, go to 2.
///
/// Every method takes the host's wall-clock `now` in epoch milliseconds;
/// early, late and repeated inputs are harmless.
#[wasm_bindgen]
#[derive(Debug)]
pub struct CredentialsMachine {
    machine: Machine,
}

#[wasm_bindgen]
impl CredentialsMachine {
    /// A machine configured with core `Config` fields (a JSON object or its
    /// text; omitted fields keep their defaults). `seed` drives every jitter.
    ///
    /// Throws an `Error` named `ConfigError` naming the offending field.
    #[wasm_bindgen(constructor)]
    pub fn new(config: Option<ConfigJs>, seed: Option<f64>) -> Result<CredentialsMachine, JsValue> {
        let config = read_config(config.map(JsValue::from))?;
        let seed = seed.map_or(0, |seed| seed as u64);
        let machine = Machine::new(config, seed)
            .map_err(|err| named_error("ConfigError", &err.to_string()))?;
        Ok(CredentialsMachine { machine })
    }

    /// A caller wants credentials at `now`.
    pub fn demand(&mut self, now: f64) -> Result<DemandJs, JsValue> {
        let answer = match self.machine.demand(timestamp(now)?) {
            Demand::Ready(credentials) => ready(&credentials),
            Demand::Rejected(cause) => rejected(&cause),
            Demand::Pending | _ => tagged("pending"),
        };
        Ok(answer.unchecked_into())
    }

    /// The next thing to do. Call until it returns `wakeAt` or `idle`.
    pub fn poll(&mut self, now: f64) -> Result<OutputJs, JsValue> {
        let output = match self.machine.poll(timestamp(now)?) {
            Output::Send(request) => {
                let out = tagged("send");
                set(&out, "request", request_object(&request));
                out
            }
            Output::Event(event) => {
                let out = tagged("event");
                set(&out, "event", event_object(&event));
                out
            }
            Output::WakeAt(at) => {
                let out = tagged("wakeAt");
                set(&out, "at", millis(at));
                out
            }
            // Other outputs (file reads) belong to the container source,
            // which this package's configuration cannot select.
            Output::Idle | _ => tagged("idle"),
        };
        Ok(output.unchecked_into())
    }

    /// The response to request `id`. Late responses (to requests the machine
    /// already gave up on) are ignored; an id it never issued throws a
    /// `MisuseError`.
    #[wasm_bindgen(js_name = handleResponse)]
    pub fn handle_response(
        &mut self,
        id: f64,
        response: ResponseJs,
        now: f64,
    ) -> Result<(), JsValue> {
        let id = request_id(id)?;
        let response = read_response(&response)?;
        self.machine
            .handle_response(id, response, timestamp(now)?)
            .map_err(|err| named_error("MisuseError", &err.to_string()))
    }

    /// Request `id` failed below HTTP: `"ConnectRefused"`, `"TimedOut"` or
    /// `"Reset"`.
    #[wasm_bindgen(js_name = handleFailure)]
    pub fn handle_failure(&mut self, id: f64, failure: FailureJs, now: f64) -> Result<(), JsValue> {
        let id = request_id(id)?;
        let failure = match JsValue::from(failure).as_string().as_deref() {
            Some("ConnectRefused") => TransportFailure::ConnectRefused,
            Some("TimedOut") => TransportFailure::TimedOut,
            Some("Reset") => TransportFailure::Reset,
            _ => {
                return Err(type_error(
                    "failure must be \"ConnectRefused\", \"TimedOut\" or \"Reset\"",
                ))
            }
        };
        self.machine
            .handle_failure(id, failure, timestamp(now)?)
            .map_err(|err| named_error("MisuseError", &err.to_string()))
    }

    /// Fire whatever is due at `now`. Calling early or twice is harmless.
    #[wasm_bindgen(js_name = handleTimeout)]
    pub fn handle_timeout(&mut self, now: f64) -> Result<(), JsValue> {
        self.machine.handle_timeout(timestamp(now)?);
        Ok(())
    }

    /// What a demand at `now` would answer, without changing anything: no
    /// fetch starts and no event is emitted (`pending` means a demand would
    /// wait for a fetch).
    pub fn peek(&self, now: f64) -> Result<DemandJs, JsValue> {
        let answer = match self.machine.credentials(timestamp(now)?) {
            Ok(credentials) => ready(&credentials),
            Err(Unavailable::Failed(cause)) => rejected(&cause),
            Err(_) => tagged("pending"),
        };
        Ok(answer.unchecked_into())
    }

    /// The credentials callers may use without asking the machine, and until
    /// when: before `serveUntil` a demand would answer `ready` with these same
    /// credentials and nothing else. Changes only when credentials arrive.
    pub fn snapshot(&self) -> Option<SnapshotJs> {
        let snapshot = self.machine.snapshot()?;
        let out = Object::new();
        set(
            &out,
            "credentials",
            credentials_object(&snapshot.credentials),
        );
        set(&out, "serveUntil", millis(snapshot.serve_until));
        Some(out.unchecked_into())
    }

    /// Whether a fetch sequence is in progress.
    #[wasm_bindgen(getter, js_name = isFetching)]
    pub fn is_fetching(&self) -> bool {
        self.machine.is_fetching()
    }

    /// The earliest instant (epoch ms) at which the machine wants
    /// `handleTimeout`, if any.
    #[wasm_bindgen(getter, js_name = nextDeadline)]
    pub fn next_deadline(&self) -> Option<f64> {
        self.machine
            .next_deadline()
            .map(|at| at.unix_millis() as f64)
    }
}

fn read_config(value: Option<JsValue>) -> Result<Config, JsValue> {
    let mut config = Config::default();
    let Some(value) = value.filter(|v| !v.is_undefined() && !v.is_null()) else {
        return Ok(config);
    };
    let value = match value.as_string() {
        Some(text) => JSON::parse(&text).map_err(|_| {
            named_error("ConfigError", "the configuration string is not valid JSON")
        })?,
        None => value,
    };
    if !value.is_object() || Array::is_array(&value) {
        return Err(type_error("config must be an object of Config fields"));
    }
    for entry in Object::entries(value.unchecked_ref()) {
        let entry: Array = entry.unchecked_into();
        let key = entry.get(0).as_string().unwrap_or_default();
        set_field(&mut config, &key, field_value(&entry.get(1)))
            .map_err(|FieldError(message)| named_error("ConfigError", &message))?;
    }
    Ok(config)
}

fn field_value(value: &JsValue) -> FieldValue {
    if value.is_undefined() || value.is_null() {
        FieldValue::Missing
    } else if let Some(flag) = value.as_bool() {
        FieldValue::Bool(flag)
    } else if let Some(number) = value.as_f64() {
        FieldValue::Number(number)
    } else if let Some(text) = value.as_string() {
        FieldValue::Text(text)
    } else {
        FieldValue::Other
    }
}

fn read_response(value: &JsValue) -> Result<Response, JsValue> {
    if !value.is_object() {
        return Err(type_error(
            "response must be an object { status, headers?, body? }",
        ));
    }
    let status = get(value, "status")
        .as_f64()
        .and_then(whole_number)
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| type_error("response.status must be an HTTP status code (100-999)"))?;
    let mut response = Response::new(status as u16, read_body(&get(value, "body"))?);
    for (name, header) in read_headers(&get(value, "headers"))? {
        response = response.with_header(name, header);
    }
    Ok(response)
}

fn read_body(body: &JsValue) -> Result<Vec<u8>, JsValue> {
    if body.is_undefined() || body.is_null() {
        Ok(Vec::new())
    } else if let Some(text) = body.as_string() {
        Ok(text.into_bytes())
    } else if let Some(bytes) = body.dyn_ref::<Uint8Array>() {
        Ok(bytes.to_vec())
    } else if body.is_instance_of::<js_sys::ArrayBuffer>() {
        Ok(Uint8Array::new(body).to_vec())
    } else {
        Err(type_error(
            "response.body must be a string, a Uint8Array or an ArrayBuffer",
        ))
    }
}

fn read_headers(headers: &JsValue) -> Result<Vec<(String, String)>, JsValue> {
    if headers.is_undefined() || headers.is_null() {
        return Ok(Vec::new());
    }
    let bad = || {
        type_error(
            "response.headers must be an object, a Headers, a Map or [name, value] pairs of strings",
        )
    };
    let pairs: Vec<JsValue> = match js_sys::try_iter(headers)? {
        Some(iter) => iter.collect::<Result<_, _>>()?,
        None if headers.is_object() => Object::entries(headers.unchecked_ref()).to_vec(),
        None => return Err(bad()),
    };
    pairs
        .into_iter()
        .map(|pair| {
            let pair: Array = pair.dyn_into().map_err(|_| bad())?;
            match (pair.get(0).as_string(), pair.get(1).as_string()) {
                (Some(name), Some(value)) => Ok((name, value)),
                _ => Err(bad()),
            }
        })
        .collect()
}

fn timestamp(now: f64) -> Result<Timestamp, JsValue> {
    if now.is_finite() {
        Ok(Timestamp::from_unix_millis(now as i64))
    } else {
        Err(type_error(
            "now must be a finite number of milliseconds since the epoch",
        ))
    }
}

fn request_id(id: f64) -> Result<RequestId, JsValue> {
    whole_number(id)
        .map(RequestId::from_raw)
        .ok_or_else(|| type_error("id must be a request id from poll()"))
}

fn millis(at: Timestamp) -> JsValue {
    JsValue::from_f64(at.unix_millis() as f64)
}

fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn set(object: &Object, key: &str, value: impl Into<JsValue>) {
    // Defining a property on a fresh plain object cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), &value.into());
}

fn tagged(kind: &str) -> Object {
    let out = Object::new();
    set(&out, "type", kind);
    out
}

fn ready(credentials: &Credentials) -> Object {
    let out = tagged("ready");
    set(&out, "credentials", credentials_object(credentials));
    out
}

fn rejected(cause: &SourceError) -> Object {
    let out = tagged("rejected");
    set(&out, "error", source_error(cause));
    out
}

fn credentials_object(credentials: &Credentials) -> Object {
    let out = Object::new();
    set(&out, "accessKeyId", credentials.access_key_id.as_str());
    set(
        &out,
        "secretAccessKey",
        credentials.secret_access_key.expose(),
    );
    set(&out, "sessionToken", credentials.session_token.expose());
    set(&out, "expiration", millis(credentials.expiration));
    if let Some(account_id) = &credentials.account_id {
        set(&out, "accountId", account_id.as_str());
    }
    out
}

fn request_object(request: &Request) -> Object {
    let headers = Object::new();
    for (name, value) in &request.headers {
        set(&headers, name, value.expose());
    }
    let out = Object::new();
    set(&out, "id", request.id.get() as f64);
    set(&out, "method", request.method.as_str());
    set(&out, "url", request.url.as_str());
    set(&out, "headers", headers);
    set(&out, "timeoutMs", request.timeout.as_millis() as f64);
    set(&out, "maxBodyBytes", request.max_body_bytes as f64);
    out
}

fn event_object(event: &Event) -> Object {
    let out = Object::new();
    set(&out, "name", event.name());
    set(&out, "message", event.to_string());
    set(&out, "warning", event.is_warning());
    let cause = match event {
        Event::AttemptFailed { cause, .. }
        | Event::FetchFailed { cause, .. }
        | Event::Rejected { cause } => Some(cause.name()),
        _ => None,
    };
    if let Some(cause) = cause {
        set(&out, "cause", cause);
    }
    out
}

/// The typed cause as a JavaScript `Error`: `name` says which, the message
/// says what happened. Neither ever carries a secret (see the core's errors).
fn source_error(cause: &SourceError) -> Error {
    let error = Error::new(&cause.to_string());
    error.set_name(cause.name());
    error
}

fn named_error(name: &str, message: &str) -> JsValue {
    let error = Error::new(message);
    error.set_name(name);
    error.into()
}

fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(message).into()
}
