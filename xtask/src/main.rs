//! `cargo xtask test`: install what the checks need, then run every one.
//! `cargo xtask wasm`: build the npm package into `wasm/pkg/`.
//!
//! Each step prints what it runs; the first failure stops the run with a
//! non-zero exit code.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};
use std::time::Instant;

mod wasm_package;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("wasm-core") => wasm_core(),
        Some("wasm") => wasm_package::build(),
        Some("wasm-bench") => wasm_package::bench(),
        _ => {
            eprintln!("usage: cargo xtask test | wasm-core | wasm | wasm-bench");
            exit(2);
        }
    };
    if let Err(message) = result {
        eprintln!("xtask: {message}");
        exit(1);
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    run_in(&root(), program, args)
}

fn run_in(dir: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("xtask> {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .map_err(|err| format!("could not start {program}: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed with {status}",
            args.join(" ")
        ))
    }
}

fn step(name: &str, body: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let started = Instant::now();
    eprintln!("\n=== {name}");
    body()?;
    eprintln!("=== {name}: ok in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn test() -> Result<(), String> {
    let started = Instant::now();
    step("install the wasm target", ensure_wasm_target)?;
    step("format check", || {
        run("cargo", &["fmt", "--all", "--", "--check"])
    })?;
    step("clippy", || {
        run(
            "cargo",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )
    })?;
    step("tests", || run("cargo", &["test", "--workspace"]))?;
    step("API docs of the library crates, warnings denied", docs)?;
    step("core on wasm32, no env imports", wasm_core)?;
    step(
        "npm package: build (wasm-bindgen, wasm-opt), imports, size",
        wasm_package::build,
    )?;
    step("npm package: node tests", wasm_package::node_tests)?;
    eprintln!(
        "\nall checks passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Broken intra-doc links and undocumented items in the crates users read.
fn docs() -> Result<(), String> {
    eprintln!("xtask> RUSTDOCFLAGS=\"-D warnings\" cargo doc --no-deps (library crates)");
    let status = Command::new("cargo")
        .args(["doc", "--no-deps", "--quiet"])
        .args([
            "-p",
            "credstate",
            "-p",
            "credstate-blocking",
            "-p",
            "credstate-tokio",
        ])
        .args(["-p", "credstate-adapter-support"])
        .env("RUSTDOCFLAGS", "-D warnings")
        .current_dir(root())
        .status()
        .map_err(|err| format!("could not start cargo doc: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo doc failed with {status}"))
    }
}

fn ensure_wasm_target() -> Result<(), String> {
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|err| format!("could not run rustup: {err}"))?;
    let installed = String::from_utf8_lossy(&output.stdout);
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        eprintln!("{WASM_TARGET} already installed");
        return Ok(());
    }
    run("rustup", &["target", "add", WASM_TARGET])
}

/// Build the core for wasm32 and prove it imports nothing from `env`: an
/// `env` import means something reached for a libc symbol or a clock, which
/// a JavaScript host cannot provide.
fn wasm_core() -> Result<(), String> {
    ensure_wasm_target()?;
    run(
        "cargo",
        &[
            "build",
            "-p",
            "credstate",
            "--target",
            WASM_TARGET,
            "--release",
        ],
    )?;
    let rlib_dir = root().join("target").join(WASM_TARGET).join("release");
    // The core is a library; link it into a cdylib probe so that the import
    // section reflects everything it needs at run time.
    let probe = root().join("target").join("xtask-wasm-probe");
    std::fs::create_dir_all(probe.join("src")).map_err(|e| e.to_string())?;
    std::fs::write(
        probe.join("Cargo.toml"),
        format!(
            "[package]\nname = \"credstate-wasm-probe\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\ncredstate = {{ path = {:?} }}\n\n\
             [profile.release]\nopt-level = \"z\"\nlto = true\ncodegen-units = 1\npanic = \"abort\"\n\n[workspace]\n",
            root().join("core").display().to_string()
        ),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(probe.join("src/lib.rs"), PROBE_SOURCE).map_err(|e| e.to_string())?;
    let target_dir = root().join("target").join("wasm-probe");
    run_in(
        &probe,
        "cargo",
        &[
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--target-dir",
            target_dir.to_str().ok_or("non-UTF-8 path")?,
        ],
    )?;
    let wasm = target_dir
        .join(WASM_TARGET)
        .join("release")
        .join("credstate_wasm_probe.wasm");
    let imports = wasm_imports(&wasm)?;
    let env_imports: Vec<&String> = imports.iter().filter(|i| i.starts_with("env.")).collect();
    let _ = rlib_dir;
    if !env_imports.is_empty() {
        return Err(format!(
            "the core's wasm build imports from env: {env_imports:?}"
        ));
    }
    let size = std::fs::metadata(&wasm).map_err(|e| e.to_string())?.len();
    eprintln!(
        "core wasm probe: {size} bytes, {} imports, none from env",
        imports.len()
    );
    Ok(())
}

/// Exercises the whole machine so that nothing is optimised away.
const PROBE_SOURCE: &str = r#"
#![no_std]
extern crate alloc;
use credstate::{Config, Demand, Machine, Output, Response, Timestamp};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! { loop {} }

struct Bump;
static mut NEXT: usize = 0;
static mut HEAP: [u8; 1 << 20] = [0; 1 << 20];
unsafe impl core::alloc::GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        let start = (NEXT + layout.align() - 1) & !(layout.align() - 1);
        if start + layout.size() > HEAP.len() { return core::ptr::null_mut(); }
        NEXT = start + layout.size();
        core::ptr::addr_of_mut!(HEAP).cast::<u8>().add(start)
    }
    unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {}
}
#[global_allocator]
static ALLOC: Bump = Bump;

#[no_mangle]
pub extern "C" fn probe(now_ms: i64, status: u32) -> u32 {
    let now = Timestamp::from_unix_millis(now_ms);
    let mut machine = Machine::new(Config::default(), now_ms as u64).unwrap();
    let _ = machine.demand(now);
    let mut sent = 0;
    for _ in 0..8 {
        match machine.poll(now) {
            Output::Send(request) => {
                sent += 1;
                let body = "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"t\",\"Expiration\":\"2030-01-01T00:00:00Z\"}";
                let _ = machine.handle_response(request.id, Response::new(status as u16, body), now);
            }
            Output::Event(event) => { let _ = alloc::format!("{event}"); }
            _ => break,
        }
    }
    match machine.demand(now) { Demand::Ready(_) => sent, _ => 0 }
}
"#;

fn wasm_imports(path: &Path) -> Result<Vec<String>, String> {
    let bytes =
        std::fs::read(path).map_err(|err| format!("could not read {}: {err}", path.display()))?;
    let mut imports = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        if let wasmparser::Payload::ImportSection(reader) =
            payload.map_err(|err| format!("invalid wasm {}: {err}", path.display()))?
        {
            for import in reader {
                let import = import.map_err(|err| err.to_string())?;
                imports.push(format!("{}.{}", import.module, import.name));
            }
        }
    }
    Ok(imports)
}
