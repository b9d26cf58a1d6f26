//! Secrets never appear in Debug or Display of any public type that can hold
//! one: credentials, the machine, events, errors, requests and responses.

mod support;

use credstate::{Config, Demand, Event, HeaderValue, Output, Request, Response, Secret};
use support::*;

const SECRETS: [&str; 3] = [TOKEN, SECRET_KEY, SESSION_TOKEN];

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
