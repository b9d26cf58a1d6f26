//! The `credstate` npm package: build it into `wasm/pkg/`, check its imports
//! and size, run its Node tests and its benchmark.
//!
//! The pipeline: `cargo rustc` of `credstate-wasm` for wasm32 with the
//! size-optimised `wasm-release` profile → `wasm-bindgen --target web` (one
//! glue for Node, bundlers and browsers) → `wasm-opt -Oz` from the npm
//! package `binaryen` when it is installed → the package's own JavaScript,
//! types, README and `package.json` copied next to it.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ensure_wasm_target, root, run, run_in, wasm_imports, WASM_TARGET};

/// Must equal the `wasm-bindgen` crate version pinned in wasm/Cargo.toml:
/// the CLI refuses modules built by another version.
const WASM_BINDGEN_VERSION: &str = "0.2.130";

/// The shipped .wasm must stay below this budget; the goal is 100 KiB.
const WASM_BUDGET_BYTES: u64 = 150 * 1024;

/// wasm features rustc emits for wasm32-unknown-unknown and wasm-bindgen
/// relies on; wasm-opt must neither reject nor go beyond them.
const WASM_OPT_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-multivalue",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-reference-types",
    "--enable-sign-ext",
];

/// Files of the package that are written by hand, in wasm/js/src.
const PACKAGE_SOURCES: &[&str] = &["provider.js", "node.js", "browser.js", "index.d.ts"];

fn js_dir() -> PathBuf {
    root().join("wasm").join("js")
}

fn pkg_dir() -> PathBuf {
    root().join("wasm").join("pkg")
}

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> String + 'a {
    move |err| format!("could not {what} {}: {err}", path.display())
}

/// The sizes of a built package, for the report.
#[derive(Debug)]
struct PackageSizes {
    /// The shipped .wasm.
    wasm: u64,
    /// The shipped .wasm, gzipped.
    wasm_gzip: u64,
    /// The JavaScript a Node user loads (wasm-bindgen glue, provider, entry).
    js: u64,
    /// The same, gzipped file by file.
    js_gzip: u64,
}

/// Build the package into wasm/pkg and check it.
pub fn build() -> Result<(), String> {
    ensure_wasm_target()?;
    let bindgen = ensure_wasm_bindgen()?;
    // Only the cdylib: when one rustc run also emits the rlib, cargo drops
    // LTO, and the module grows by a third.
    run(
        "cargo",
        &[
            "rustc",
            "-p",
            "credstate-wasm",
            "--lib",
            "--crate-type",
            "cdylib",
            "--target",
            WASM_TARGET,
            "--profile",
            "wasm-release",
        ],
    )?;
    let module = root()
        .join("target")
        .join(WASM_TARGET)
        .join("wasm-release")
        .join("credstate_wasm.wasm");
    let pkg = pkg_dir();
    if pkg.exists() {
        fs::remove_dir_all(&pkg).map_err(io_error("remove", &pkg))?;
    }
    fs::create_dir_all(&pkg).map_err(io_error("create", &pkg))?;
    run(
        path_str(&bindgen)?,
        &[
            "--target",
            "web",
            "--remove-name-section",
            "--remove-producers-section",
            "--out-dir",
            path_str(&pkg)?,
            path_str(&module)?,
        ],
    )?;
    copy_package_sources(&pkg)?;
    ensure_npm_dev_packages()?;
    let wasm = pkg.join("credstate_wasm_bg.wasm");
    optimize(&wasm)?;

    let imports = wasm_imports(&wasm)?;
    let env_imports: Vec<&String> = imports.iter().filter(|i| i.starts_with("env.")).collect();
    if !env_imports.is_empty() {
        return Err(format!(
            "the package's wasm imports from env: {env_imports:?}"
        ));
    }
    let sizes = measure(&pkg)?;
    eprintln!(
        "package wasm: {} bytes ({:.1} KiB), {} gzipped; JS for Node: {} bytes, {} gzipped; \
         total gzipped {} bytes; {} imports, none from env",
        sizes.wasm,
        sizes.wasm as f64 / 1024.0,
        sizes.wasm_gzip,
        sizes.js,
        sizes.js_gzip,
        sizes.wasm_gzip + sizes.js_gzip,
        imports.len()
    );
    if sizes.wasm > WASM_BUDGET_BYTES {
        return Err(format!(
            "the package's wasm is {} bytes, over its budget of {WASM_BUDGET_BYTES} bytes",
            sizes.wasm
        ));
    }
    Ok(())
}

/// Run the package's Node tests (`node --test`) against wasm/pkg.
pub fn node_tests() -> Result<(), String> {
    let dir = js_dir().join("test");
    let mut files: Vec<String> = fs::read_dir(&dir)
        .map_err(io_error("list", &dir))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".test.js"))
        .map(|name| format!("test/{name}"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no *.test.js files in {}", dir.display()));
    }
    let mut args = vec!["--test", "--test-concurrency=1"];
    args.extend(files.iter().map(String::as_str));
    run_in(&js_dir(), "node", &args)
}

/// Build the package, then run the hot-path benchmark against the smithy
/// provider.
pub fn bench() -> Result<(), String> {
    build()?;
    run_in(&js_dir(), "node", &["bench/hot-path.js"])
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("non-UTF-8 path {}", path.display()))
}

/// Where pinned tools are installed: a per-user cache outside the checkout,
/// so fresh clones (CI's among them) on the same machine share one install;
/// `CREDSTATE_TOOLS_DIR` overrides it.
fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CREDSTATE_TOOLS_DIR") {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home)
            .join(".cache")
            .join("credstate")
            .join("tools"),
        None => root().join("target").join("tools"),
    }
    .join(format!("wasm-bindgen-{WASM_BINDGEN_VERSION}"))
}

/// The pinned wasm-bindgen CLI: already on PATH or in the tools cache at the
/// right version, or installed there (the slow part of a first run).
fn ensure_wasm_bindgen() -> Result<PathBuf, String> {
    let tools = tools_dir();
    let local = tools.join("bin").join("wasm-bindgen");
    for candidate in [local.clone(), PathBuf::from("wasm-bindgen")] {
        if reports_version(&candidate) {
            eprintln!(
                "wasm-bindgen {WASM_BINDGEN_VERSION}: {}",
                candidate.display()
            );
            return Ok(candidate);
        }
    }
    let version = format!("={WASM_BINDGEN_VERSION}");
    let root_arg = path_str(&tools)?.to_string();
    let install = |locked: bool| {
        let mut args = vec!["install", "wasm-bindgen-cli", "--version", &version];
        if locked {
            args.push("--locked");
        }
        args.extend(["--root", &root_arg, "--force"]);
        run("cargo", &args)
    };
    // --locked can fail when the lock pins a version the registry mirror
    // lacks; the same version of the CLI then builds with fresh resolution.
    install(true).or_else(|_| install(false))?;
    if reports_version(&local) {
        Ok(local)
    } else {
        Err(format!(
            "installed wasm-bindgen at {} does not report version {WASM_BINDGEN_VERSION}",
            local.display()
        ))
    }
}

fn reports_version(program: &Path) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout).trim()
                == format!("wasm-bindgen {WASM_BINDGEN_VERSION}")
        })
}

fn copy_package_sources(pkg: &Path) -> Result<(), String> {
    let src = js_dir().join("src");
    for name in PACKAGE_SOURCES {
        let from = src.join(name);
        fs::copy(&from, pkg.join(name)).map_err(io_error("copy", &from))?;
    }
    let readme = js_dir().join("README.md");
    fs::copy(&readme, pkg.join("README.md")).map_err(io_error("copy", &readme))?;
    let template_path = js_dir().join("package.template.json");
    let template = fs::read_to_string(&template_path).map_err(io_error("read", &template_path))?;
    let manifest = template.replace("@VERSION@", &workspace_version()?);
    let out = pkg.join("package.json");
    fs::write(&out, manifest).map_err(io_error("write", &out))
}

/// `version` of `[workspace.package]` in the root Cargo.toml.
fn workspace_version() -> Result<String, String> {
    let path = root().join("Cargo.toml");
    let text = fs::read_to_string(&path).map_err(io_error("read", &path))?;
    let mut in_section = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
        } else if in_section {
            if let Some(value) = line.strip_prefix("version") {
                let value = value.trim_start().trim_start_matches('=').trim();
                return Ok(value.trim_matches('"').to_string());
            }
        }
    }
    Err(format!(
        "no version in [workspace.package] of {}",
        path.display()
    ))
}

/// `npm ci` in wasm/js unless node_modules already matches the lock file.
fn ensure_npm_dev_packages() -> Result<(), String> {
    let dir = js_dir();
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules").join(".package-lock.json");
    let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
    if let (Some(lock_time), Some(installed_time)) = (modified(&lock), modified(&installed)) {
        if installed_time >= lock_time {
            eprintln!("npm dev packages up to date in {}", dir.display());
            return Ok(());
        }
    }
    run_in(&dir, "npm", &["ci", "--no-audit", "--no-fund"])
}

/// `wasm-opt -Oz` in place, with binaryen's wasm-opt from npm; skipped (with a
/// note) when it is not installed, as the package works without it.
fn optimize(wasm: &Path) -> Result<(), String> {
    let wasm_opt = js_dir().join("node_modules").join(".bin").join("wasm-opt");
    if !wasm_opt.exists() {
        eprintln!(
            "wasm-opt not found at {} (npm ci in wasm/js installs binaryen): shipping the unoptimised module",
            wasm_opt.display()
        );
        return Ok(());
    }
    let before = file_size(wasm)?;
    let mut args = vec!["-Oz", "--strip-debug", "--strip-producers"];
    args.extend(WASM_OPT_FEATURES);
    args.extend([path_str(wasm)?, "-o", path_str(wasm)?]);
    run(path_str(&wasm_opt)?, &args)?;
    eprintln!("wasm-opt -Oz: {before} → {} bytes", file_size(wasm)?);
    Ok(())
}

fn file_size(path: &Path) -> Result<u64, String> {
    fs::metadata(path)
        .map(|m| m.len())
        .map_err(io_error("stat", path))
}

fn gzip_size(path: &Path) -> Result<u64, String> {
    let bytes = fs::read(path).map_err(io_error("read", path))?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(&bytes)
        .and_then(|()| encoder.finish())
        .map(|out| out.len() as u64)
        .map_err(|err| format!("could not gzip {}: {err}", path.display()))
}

fn measure(pkg: &Path) -> Result<PackageSizes, String> {
    let wasm = pkg.join("credstate_wasm_bg.wasm");
    let mut sizes = PackageSizes {
        wasm: file_size(&wasm)?,
        wasm_gzip: gzip_size(&wasm)?,
        js: 0,
        js_gzip: 0,
    };
    for name in ["credstate_wasm.js", "provider.js", "node.js"] {
        let file = pkg.join(name);
        sizes.js += file_size(&file)?;
        sizes.js_gzip += gzip_size(&file)?;
    }
    Ok(sizes)
}
