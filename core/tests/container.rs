//! The container source (FIELD-GUIDE §2): ECS and EKS Pod Identity endpoints,
//! the authorization token and its file, error bodies — and the machine's
//! refresh, static stability and backoff, shared with IMDS.

mod support;

use std::time::Duration;

use credstate::{
    resolve_config, AuthTokenProblem, Config, ContainerAuth, ContainerSource, Demand, Environment,
    Event, FileError, FileReadId, Machine, MisuseError, Output, Request, RequestId, Response,
    Secret, Settings, SourceError, Step, TransportFailure,
};
use support::*;

fn authorization(request: &Request) -> Option<&str> {
    request
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.expose())
}

fn eks_sim() -> Sim {
    let mut sim = Sim::new(eks_config());
    sim.write_file(TOKEN_FILE, FILE_TOKEN);
    sim
}

#[test]
fn an_ecs_fetch_is_one_get_to_the_agent_with_the_query_kept_and_a_two_second_timeout() {
    let source = ContainerSource::relative_uri("/v2/credentials/4f7c?role=web").unwrap();
    let mut sim = Sim::new(config_with(|c| c.container = Some(source)));
    let credentials =
        expect_ready(sim.demand_until_settled(&mut container_healthy("ASIA1", T0 + 6 * HOUR)));
    assert_eq!(credentials.access_key_id, "ASIA1");
    assert_eq!(sim.sent.len(), 1);
    let (_, request) = &sim.sent[0];
    assert_eq!(request.method.as_str(), "GET");
    assert_eq!(
        request.url,
        "http://169.254.170.2/v2/credentials/4f7c?role=web"
    );
    assert_eq!(request.timeout, 2 * SECOND);
    assert_eq!(authorization(request), None);
    assert!(sim.reads.is_empty(), "no token file configured");
    assert_eq!(
        request.step.to_string(),
        "the container credentials request to http://169.254.170.2/v2/credentials/4f7c?role=web"
    );
}

#[test]
fn the_token_file_is_read_before_the_request_and_sent_as_a_secret_header() {
    let mut sim = eks_sim();
    expect_ready(sim.demand_until_settled(&mut container_healthy("ASIA1", T0 + 6 * HOUR)));
    assert_eq!(sim.reads.len(), 1);
    let (_, read) = &sim.reads[0];
    assert_eq!(read.path, TOKEN_FILE);
    assert_eq!(read.max_bytes, 65_536);
    assert_eq!(read.timeout, 2 * SECOND);
    assert!(matches!(read.step, Step::ContainerTokenFile { .. }));
    let (_, request) = &sim.sent[0];
    assert_eq!(authorization(request), Some(FILE_TOKEN));
    assert!(request.headers.iter().all(|(_, value)| value.is_secret()));
}

#[test]
fn the_token_file_is_read_afresh_before_every_fetch_and_its_new_contents_are_used() {
    let mut sim = eks_sim();
    let mut agent = container_healthy("ASIA1", T0 + HOUR);
    expect_ready(sim.demand_until_settled(&mut agent));
    // EKS rotates the token; each later fetch must send the new one.
    for (round, token) in ["rotated-token-2", "rotated-token-3"].iter().enumerate() {
        sim.write_file(TOKEN_FILE, token);
        let expiration = T0 + HOUR * (round as u32 + 2);
        sim.run_for(HOUR, &mut container_healthy("ASIA2", expiration));
        let (_, last) = sim.sent.last().unwrap();
        assert_eq!(authorization(last), Some(*token));
    }
    assert!(sim.fetch_starts().len() >= 3);
    assert_eq!(
        sim.reads.len(),
        sim.fetch_starts().len(),
        "one read per fetch"
    );
    // Every request follows a read of the file within the same fetch.
    for (sent_at, _) in &sim.sent {
        assert!(sim.reads.iter().any(|(read_at, _)| read_at <= sent_at));
    }
}

#[test]
fn the_token_file_beats_the_environment_token() {
    let env: Environment = [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", EKS_URI),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", ENV_TOKEN),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", TOKEN_FILE),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let resolved = resolve_config(&Settings::default(), &env, None).unwrap();
    let mut sim = Sim::new(resolved.machine_config());
    sim.write_file(TOKEN_FILE, FILE_TOKEN);
    expect_ready(sim.demand_until_settled(&mut container_healthy("ASIA1", T0 + 6 * HOUR)));
    assert_eq!(sim.reads.len(), 1);
    assert_eq!(authorization(&sim.sent[0].1), Some(FILE_TOKEN));
}

#[test]
fn a_configured_token_is_sent_without_reading_any_file() {
    let mut sim = Sim::new(container_config(
        "http://127.0.0.1:8080/creds",
        ContainerAuth::Token(Secret::new(ENV_TOKEN)),
    ));
    expect_ready(sim.demand_until_settled(&mut container_healthy("ASIA1", T0 + 6 * HOUR)));
    assert!(sim.reads.is_empty());
    assert_eq!(authorization(&sim.sent[0].1), Some(ENV_TOKEN));
}

#[test]
fn a_token_file_with_cr_or_lf_is_rejected_and_never_sent() {
    for contents in ["s3cr3t-value\n", "s3cr3t\r\nvalue", "s3cr3t-value\r"] {
        let mut sim = Sim::new(eks_config());
        sim.write_file(TOKEN_FILE, contents);
        let cause = expect_rejected(
            sim.demand_until_settled(&mut container_healthy("ASIA1", T0 + 6 * HOUR)),
        );
        assert_eq!(
            cause,
            SourceError::InvalidAuthorizationToken {
                path: TOKEN_FILE.into(),
                problem: AuthTokenProblem::LineBreak
            }
        );
        assert!(sim.sent.is_empty(), "nothing sent with a bad token");
        assert!(!format!("{cause} {cause:?}").contains("s3cr3t"), "{cause}");
    }
}

#[test]
fn a_configured_token_with_cr_or_lf_is_refused_by_the_configuration() {
    let config = container_config(
        EKS_URI,
        ContainerAuth::Token(Secret::new("token\r\nX-Injected: 1")),
    );
    let err = Machine::new(config, 1).unwrap_err();
    assert_eq!(err.field, "container.auth");
    assert!(!err.to_string().contains("Injected"), "{err}");
}

#[test]
fn an_empty_oversized_or_binary_token_file_is_a_typed_error() {
    let huge = "a".repeat(65_537);
    let cases: [(&[u8], AuthTokenProblem); 3] = [
        (b"", AuthTokenProblem::Empty),
        (
            huge.as_bytes(),
            AuthTokenProblem::TooLarge { limit: 65_536 },
        ),
        (&[0xff, 0xfe, 0x00], AuthTokenProblem::NotUtf8),
    ];
    for (contents, problem) in cases {
        let mut sim = Sim::new(eks_config());
        sim.files
            .insert(TOKEN_FILE.into(), FileReply::Contents(contents.to_vec()));
        let cause = expect_rejected(
            sim.demand_until_settled(&mut container_healthy("ASIA1", T0 + 6 * HOUR)),
        );
        assert_eq!(
            cause,
            SourceError::InvalidAuthorizationToken {
                path: TOKEN_FILE.into(),
                problem
            }
        );
    }
}

#[test]
fn an_unreadable_token_file_is_a_typed_error_naming_the_path_and_reason() {
    for error in [
        FileError::NotFound,
        FileError::PermissionDenied,
        FileError::Other("Is a directory (os error 21)".into()),
    ] {
        let mut sim = Sim::new(eks_config());
        sim.files
            .insert(TOKEN_FILE.into(), FileReply::Error(error.clone()));
        let cause = expect_rejected(
            sim.demand_until_settled(&mut container_healthy("ASIA1", T0 + 6 * HOUR)),
        );
        assert_eq!(cause.name(), "TokenFileUnreadable");
        let message = cause.to_string();
        assert!(message.contains(TOKEN_FILE), "{message}");
        assert!(message.contains(&error.to_string()), "{message}");
        assert!(!cause.is_retryable());
        assert!(sim.sent.is_empty());
    }
}

#[test]
fn a_token_file_read_that_never_completes_times_out_and_its_late_report_is_ignored() {
    let mut sim = Sim::new(eks_config());
    sim.files.insert(TOKEN_FILE.into(), FileReply::Hang);
    assert!(matches!(sim.demand(), Demand::Pending));
    let read = sim.read_outbox.remove(0);
    sim.jump_to(sim.now + 2 * SECOND);
    sim.machine.handle_timeout(sim.now);
    assert_eq!(
        expect_rejected(sim.demand()),
        SourceError::TokenFileUnreadable {
            path: TOKEN_FILE.into(),
            error: FileError::TimedOut
        }
    );
    sim.machine
        .handle_file(read.id, Ok(FILE_TOKEN.as_bytes().to_vec()), sim.now)
        .unwrap();
    assert!(sim.collect().is_empty(), "the late contents start nothing");
}

#[test]
fn a_4xx_surfaces_the_code_and_message_of_the_error_body_without_retrying() {
    let mut sim = eks_sim();
    let body =
        r#"{"Code":"AccessDeniedException","Message":"Service account token cannot be empty"}"#;
    let cause = expect_rejected(
        sim.demand_until_settled(&mut always(Reply::Respond(Response::new(403, body)))),
    );
    assert_eq!(
        cause,
        SourceError::Refused {
            step: Step::ContainerCredentials {
                url: EKS_URI.into()
            },
            status: 403,
            code: Some("AccessDeniedException".into()),
            message: Some("Service account token cannot be empty".into()),
        }
    );
    assert_eq!(
        cause.to_string(),
        "the container credentials request to http://169.254.170.23/v1/credentials was refused \
         with HTTP 403: AccessDeniedException: Service account token cannot be empty"
    );
    assert_eq!(sim.sent.len(), 1, "a 4xx is not retried within the fetch");
}

#[test]
fn a_4xx_without_a_json_body_still_names_the_status() {
    let mut sim = eks_sim();
    let cause = expect_rejected(sim.demand_until_settled(&mut always(Reply::Respond(
        Response::new(401, "<html>no</html>"),
    ))));
    assert!(matches!(
        cause,
        SourceError::Refused {
            status: 401,
            code: None,
            message: None,
            ..
        }
    ));
}

#[test]
fn throttling_server_errors_and_resets_are_retried_with_the_token_read_once_per_fetch() {
    let replies = [
        (status(429), "Throttled"),
        (status(503), "Throttled"),
        (status(500), "ServerError"),
        (Reply::Fail(TransportFailure::Reset), "Unreachable"),
    ];
    for (reply, name) in replies {
        let mut sim = eks_sim();
        let cause = expect_rejected(sim.demand_until_settled(&mut always(reply)));
        assert_eq!(cause.name(), name);
        assert_eq!(sim.sent.len(), 3, "3 attempts");
        assert_eq!(sim.reads.len(), 1);
        assert!(sim
            .sent
            .iter()
            .all(|(_, r)| authorization(r) == Some(FILE_TOKEN)));
    }
}

#[test]
fn static_stability_and_backoff_are_shared_with_imds() {
    let mut sim = eks_sim();
    let expiration = T0 + 6 * HOUR;
    expect_ready(sim.demand_until_settled(&mut container_healthy("ASIA1", expiration)));
    // The agent fails from before the advisory window to past expiry.
    sim.run_for(6 * HOUR + 20 * MINUTE, &mut always(status(500)));
    let credentials = expect_ready(sim.demand());
    assert_eq!(credentials.access_key_id, "ASIA1");
    assert_eq!(credentials.expiration, expiration);
    let extensions: Vec<Duration> = sim
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::StaticStabilityExtended { until, .. } => Some(until.saturating_since(*at)),
            _ => None,
        })
        .collect();
    assert!(!extensions.is_empty());
    assert!(extensions
        .iter()
        .all(|d| *d >= 5 * MINUTE && *d <= 10 * MINUTE));
    // Backoff: after expiry the pause between fetches is capped at 30 s (a
    // fetch itself takes up to 2 s of pauses between its three attempts),
    // and there is never more than one fetch per second.
    let starts: Vec<_> = sim
        .fetch_starts()
        .into_iter()
        .filter(|at| *at > expiration)
        .collect();
    for pair in starts.windows(2) {
        let gap = pair[1].saturating_since(pair[0]);
        assert!(gap >= SECOND && gap <= 32 * SECOND, "{gap:?}");
    }
    assert!(
        sim.reads.len() >= sim.fetch_starts().len(),
        "every retry reads the token file again"
    );
    // Recovery brings new credentials.
    sim.run_for(MINUTE, &mut container_healthy("ASIA2", T0 + 12 * HOUR));
    assert_eq!(expect_ready(sim.demand()).access_key_id, "ASIA2");
}

#[test]
fn credentials_that_arrive_expired_name_the_container_step() {
    let mut sim = Sim::new(config_with(|c| {
        c.stability = credstate::Stability::Strict;
        c.container = Some(ContainerSource::full_uri(EKS_URI).unwrap());
    }));
    let cause =
        expect_rejected(sim.demand_until_settled(&mut container_healthy("ASIA0", T0 - MINUTE)));
    assert!(
        cause
            .to_string()
            .starts_with("the container credentials request to http://169.254.170.23"),
        "{cause}"
    );
}

#[test]
fn file_reads_and_requests_are_not_interchangeable() {
    let mut sim = Sim::new(eks_config());
    let err = sim
        .machine
        .handle_file(FileReadId::from_raw(9), Ok(b"x".to_vec()), sim.now)
        .unwrap_err();
    assert_eq!(err, MisuseError::UnknownFileRead(FileReadId::from_raw(9)));
    assert!(err.to_string().contains("file read #9"), "{err}");

    assert!(matches!(sim.demand(), Demand::Pending));
    let read = sim.read_outbox.remove(0);
    // The read's id reported as a request's is refused; the read stays pending.
    let err = sim
        .machine
        .handle_response(
            RequestId::from_raw(read.id.get()),
            Response::new(200, "x"),
            sim.now,
        )
        .unwrap_err();
    assert!(matches!(err, MisuseError::UnknownRequest(_)));
    sim.machine
        .handle_file(read.id, Ok(FILE_TOKEN.as_bytes().to_vec()), sim.now)
        .unwrap();
    let request = sim.collect().remove(0);
    let err = sim
        .machine
        .handle_file(FileReadId::from_raw(request.id.get()), Ok(vec![]), sim.now)
        .unwrap_err();
    assert!(matches!(err, MisuseError::UnknownFileRead(_)));
    sim.machine
        .handle_response(
            request.id,
            Response::new(200, container_credentials_json("ASIA1", T0 + HOUR)),
            sim.now,
        )
        .unwrap();
    expect_ready(sim.demand());
}

#[test]
fn a_duplicate_file_report_is_ignored() {
    let mut sim = Sim::new(eks_config());
    assert!(matches!(sim.demand(), Demand::Pending));
    let read = sim.read_outbox.remove(0);
    let contents = Ok(FILE_TOKEN.as_bytes().to_vec());
    sim.machine
        .handle_file(read.id, contents.clone(), sim.now)
        .unwrap();
    sim.machine.handle_file(read.id, contents, sim.now).unwrap();
    assert_eq!(sim.collect().len(), 1, "one request, not two");
}

#[test]
fn the_machine_asks_for_the_file_through_poll_like_any_other_output() {
    let mut machine = Machine::new(eks_config(), 3).unwrap();
    assert!(matches!(machine.demand(T0), Demand::Pending));
    let read = loop {
        match machine.poll(T0) {
            Output::ReadFile(read) => break read,
            Output::Event(_) => {}
            other => panic!("expected a file read, got {other:?}"),
        }
    };
    assert!(matches!(machine.poll(T0), Output::WakeAt(at) if at == T0 + 2 * SECOND));
    assert!(machine.is_fetching());
    machine
        .handle_file(read.id, Err(FileError::NotFound), T0)
        .unwrap();
    assert!(matches!(machine.demand(T0), Demand::Rejected(_)));
}

#[test]
fn config_json_selects_the_container_source() {
    let config: Config = serde_json::from_str(
        r#"{"container": {"uri": "http://169.254.170.2/creds", "auth": {"token_file": "/t"}}, "attempts": 2}"#,
    )
    .unwrap();
    let container = config.container.as_ref().unwrap();
    assert_eq!(container.uri, "http://169.254.170.2/creds");
    assert_eq!(container.auth, ContainerAuth::TokenFile("/t".into()));
    assert_eq!(container.timeout, 2 * SECOND);
    config.validate().unwrap();

    for (json, field) in [
        (
            r#"{"container": {"uri": "http://example.com/creds"}}"#,
            "container.uri",
        ),
        (
            r#"{"container": {"uri": "http://localhost/c"}, "disabled": true}"#,
            "disabled",
        ),
        (
            r#"{"container": {"uri": "http://localhost/c", "timeout": "0"}}"#,
            "container.timeout",
        ),
    ] {
        let config: Config = serde_json::from_str(json).unwrap();
        assert_eq!(config.validate().unwrap_err().field, field, "{json}");
    }
    assert!(serde_json::from_str::<Config>(r#"{"container": {"url": "x"}}"#).is_err());
}

#[test]
fn a_token_file_that_goes_bad_never_costs_the_credentials_held() {
    let mut sim = eks_sim();
    expect_ready(sim.demand_until_settled(&mut container_healthy("ASIA1", T0 + 6 * HOUR)));
    let bad_files = [
        FileReply::Contents(b"two\nlines".to_vec()),
        FileReply::Error(FileError::NotFound),
        FileReply::Hang,
    ];
    // Into the advisory window (at most an hour before expiry), then one
    // backoff period (at most 5 min while valid credentials are held) each.
    let spans = [5 * HOUR + 15 * MINUTE, 10 * MINUTE, 10 * MINUTE];
    for (bad, span) in bad_files.into_iter().zip(spans) {
        sim.files.insert(TOKEN_FILE.into(), bad);
        let failures_before = sim.count_events(|e| matches!(e, Event::FetchFailed { .. }));
        sim.run_for(span, &mut container_healthy("ASIA2", T0 + 12 * HOUR));
        assert!(sim.count_events(|e| matches!(e, Event::FetchFailed { .. })) > failures_before);
        assert_eq!(expect_ready(sim.demand()).access_key_id, "ASIA1");
    }
    assert_eq!(sim.sent.len(), 1, "no request went out with a bad token");
    // Once the file is good again, the next refresh succeeds.
    sim.write_file(TOKEN_FILE, FILE_TOKEN);
    sim.run_for(10 * MINUTE, &mut container_healthy("ASIA2", T0 + 12 * HOUR));
    assert_eq!(expect_ready(sim.demand()).access_key_id, "ASIA2");
}
