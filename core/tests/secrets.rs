//! Secrets never appear in Debug or Display of any public type that can hold
//! one: credentials, the machine, events, errors, requests and responses, the
//! configuration and its resolution — including the container authorization
//! token, whether configured or read from its file.

mod support;

use credstate::{
    resolve_config, ContainerAuth, Demand, Environment, Event, HeaderValue, Output, Request,
    Response, Secret, Settings,
};
use credstate::{Config, SourceError};
use support::*;

const SECRETS: [&str; 5] = [TOKEN, SECRET_KEY, SESSION_TOKEN, FILE_TOKEN, ENV_TOKEN];

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} printed a secret: {text}");
    }
}

fn assert_both_clean<T: std::fmt::Debug + std::fmt::Display>(what: &str, value: &T) {
    assert_clean(what, &format!("{value:?}"));
    assert_clean(what, &format!("{value:#?}"));
    assert_clean(what, &format!("{value}"));
}

#[test]
fn no_public_type_ever_prints_a_secret() {
    // A run that touches every path: token, credentials, outage, static
    // stability, malformed bodies that embed the secrets, rejection.
    let mut sim = Sim::default_config();
    let mut imds = healthy("ASIA1", T0 + 6 * HOUR);
    let credentials = expect_ready(sim.demand_until_settled(&mut imds));
    assert_both_clean("Credentials", &*credentials);
    assert_clean("Machine", &format!("{:?}", sim.machine));

    let leaky_bodies = [
        format!(r#"{{"Code":"Success","Token":{SESSION_TOKEN:?},"SecretAccessKey":{SECRET_KEY:?}"#),
        format!(r#"{{"Token": 1{}, "x": "{TOKEN}"}}"#, "2".repeat(5)),
        format!("{SECRET_KEY}\n{SESSION_TOKEN}"),
        format!(r#"{{"Code":"Nope","Message":"fine"}} {TOKEN}"#),
    ];
    for body in leaky_bodies {
        let mut healthy = healthy("ASIA1", T0 + 6 * HOUR);
        let mut leaky = |request: &Request| match request.path() {
            TOKEN_PATH | EXTENDED_LIST => healthy(request),
            _ => ok(&body),
        };
        sim.run_for(2 * HOUR, &mut leaky);
    }
    sim.run_for(3 * HOUR, &mut always(status(500)));
    let _ = sim.demand();
    sim.jump_to(T0 + 9 * HOUR);
    match sim.demand() {
        Demand::Rejected(cause) => assert_both_clean("SourceError", &cause),
        other => assert_clean("Demand", &format!("{other:?}")),
    }
    for (_, event) in &sim.events {
        assert_both_clean("Event", event);
    }
    for (_, request) in &sim.sent {
        assert_clean("Request", &format!("{request:?}"));
    }
    assert_clean("Machine", &format!("{:?}", sim.machine));
    assert!(sim
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::AttemptFailed { .. })));
}

#[test]
fn requests_carry_the_token_only_through_expose() {
    let mut sim = Sim::new(Config::default());
    let _ = sim.demand();
    sim.machine
        .handle_response(sim.outbox.remove(0).id, Response::new(200, TOKEN), sim.now)
        .unwrap();
    let request: Request = loop {
        match sim.machine.poll(sim.now) {
            Output::Send(request) => break request,
            Output::Event(_) => {}
            other => panic!("{other:?}"),
        }
    };
    let (_, value) = request
        .headers
        .iter()
        .find(|(name, _)| *name == "x-aws-ec2-metadata-token")
        .expect("token header");
    assert!(value.is_secret());
    assert_eq!(value.expose(), TOKEN);
    assert_clean("HeaderValue", &format!("{value:?}"));
    assert_clean("Request", &format!("{request:?}"));
}

#[test]
fn responses_print_their_size_not_their_body() {
    let response = Response::new(200, credentials_json("ASIA1", T0)).with_header("x", TOKEN);
    assert_clean("Response", &format!("{response:?}"));
}

#[test]
fn secrets_redact_in_debug_and_display() {
    let secret = Secret::new(SECRET_KEY);
    assert_both_clean("Secret", &secret);
    assert_eq!(secret.expose(), SECRET_KEY);
    assert_clean("HeaderValue", &format!("{:?}", HeaderValue::Secret(secret)));
}

#[test]
fn container_tokens_never_print_from_the_file_the_configuration_or_an_echoing_server() {
    let mut sim = Sim::new(eks_config());
    sim.write_file(TOKEN_FILE, FILE_TOKEN);
    let credentials =
        expect_ready(sim.demand_until_settled(&mut container_healthy("ASIA1", T0 + 6 * HOUR)));
    assert_both_clean("Credentials", &*credentials);

    // A server that echoes the Authorization header into its error message.
    let echo = format!(r#"{{"Code":"{FILE_TOKEN}","Message":"token {FILE_TOKEN} is not valid"}}"#);
    sim.run_for(
        6 * HOUR,
        &mut always(Reply::Respond(Response::new(403, echo.as_str()))),
    );
    let refusal = sim
        .events
        .iter()
        .find_map(|(_, e)| match e {
            Event::FetchFailed {
                cause: cause @ SourceError::Refused { .. },
                ..
            } => Some(cause.clone()),
            _ => None,
        })
        .expect("a refusal");
    assert!(refusal.to_string().contains("<redacted>"), "{refusal}");

    // A rotated file holding a line break: rejected, never echoed.
    sim.write_file(TOKEN_FILE, &format!("{FILE_TOKEN}\n"));
    sim.run_for(HOUR, &mut container_healthy("ASIA2", T0 + 12 * HOUR));
    sim.jump_to(T0 + 9 * HOUR);
    let _ = sim.demand();

    for (_, event) in &sim.events {
        assert_both_clean("Event", event);
    }
    for (_, request) in &sim.sent {
        assert_clean("Request", &format!("{request:?}"));
    }
    for (_, read) in &sim.reads {
        assert_clean("FileRead", &format!("{read:?}"));
    }
    assert_clean("Machine", &format!("{:?}", sim.machine));
    assert!(sim
        .events
        .iter()
        .any(|(_, e)| e.to_string().contains("line break")));
}

#[test]
fn a_configured_container_token_never_prints_or_serializes() {
    let config = container_config(EKS_URI, ContainerAuth::Token(Secret::new(ENV_TOKEN)));
    assert_clean("Config", &format!("{config:?} {config:#?}"));
    assert_clean("Config JSON", &serde_json::to_string(&config).unwrap());
    let mut sim = Sim::new(config);
    expect_ready(sim.demand_until_settled(&mut container_healthy("ASIA1", T0 + 6 * HOUR)));
    for (_, request) in &sim.sent {
        assert_clean("Request", &format!("{request:?}"));
    }
    assert_clean("Machine", &format!("{:?}", sim.machine));

    let env: Environment = [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", EKS_URI.to_string()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", ENV_TOKEN.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let resolved = resolve_config(&Settings::default(), &env, None).unwrap();
    assert_clean("ResolvedConfig", &format!("{resolved:?}"));
    let report = serde_json::to_string(&resolved.report()).unwrap();
    assert_clean("ConfigReport", &report);
    assert!(report.contains(r#""auth":"env""#), "{report}");

    let mut bad = env.clone();
    bad.insert(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN".into(),
        format!("{ENV_TOKEN}\r\n"),
    );
    let err = resolve_config(&Settings::default(), &bad, None).unwrap_err();
    assert_both_clean("ResolveError", &err);
    assert_eq!(err.key(), Some("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
}
