//! `credstate mock-imds` end to end: it refuses a bad scenario by naming the
//! field, and serves IMDS on loopback until stopped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CREDSTATE: &str = env!("CARGO_BIN_EXE_credstate");

fn scenario_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("credstate-{}-{name}.json", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn mock_imds_names_the_bad_scenario_field_and_exits_2() {
    let path = scenario_file(
        "bad",
        r#"{"duration": "1h", "imds": {"rotation": "sometimes"}}"#,
    );
    let output = Command::new(CREDSTATE)
        .args(["mock-imds", "--port", "0", "--scenario"])
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("imds.rotation"), "{stderr}");
}

#[test]
fn mock_imds_rejects_a_bad_lifetime_with_exit_2() {
    let output = Command::new(CREDSTATE)
        .args(["mock-imds", "--port", "0", "--credential-lifetime", "soon"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn mock_imds_serves_the_scenario_role_on_loopback_until_stopped() {
    let path = scenario_file(
        "good",
        r#"{"duration": "1h", "imds": {"role": "from-the-scenario"},
            "faults": [{"from": "1h", "kind": "clock_jump", "by": "+1d"}]}"#,
    );
    let mut child = Command::new(CREDSTATE)
        .args(["mock-imds", "--port", "0", "--quiet", "--scenario"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, first_line) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = lines.send(line);
        // Keep the pipe open and drained until the mock exits.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let banner = first_line.recv_timeout(Duration::from_secs(20));
    let answer = banner
        .as_ref()
        .map_err(|err| err.to_string())
        .and_then(|banner| ask_for_the_role(banner).map_err(|err| err.to_string()));
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    std::fs::remove_file(&path).ok();

    let banner = banner.expect("the banner within 20 s");
    assert!(banner.contains("http://127.0.0.1:"), "{banner}");
    let answer = answer.unwrap_or_else(|err| {
        panic!(
            "no answer from the mock: {err}; it exited with {:?}, stderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("from-the-scenario"), "{answer}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("clock_jump ignored"), "{stderr}");
}

/// GET the role list from the endpoint the banner names, over plain TCP.
fn ask_for_the_role(banner: &str) -> std::io::Result<String> {
    let address = banner
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| std::io::Error::other(format!("no endpoint in {banner:?}")))?;
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(
        b"GET /latest/meta-data/iam/security-credentials/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}
