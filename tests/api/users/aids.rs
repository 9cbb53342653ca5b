//! What the staff-account tests share: the clock, the CLI with a password on
//! stdin, TOTP codes from an enrolment URI, the QR code read back, the
//! credential check, and the audit log through `GET /v1/audit`.

use std::{
    ffi::OsStr,
    io::Write,
    process::{Command, Stdio},
};

use arkku::{
    clock::{TestTime, TEST_CLOCK_ENV},
    service::staff::{self, SignInError, StaffAccount},
};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use time::{macros::datetime, OffsetDateTime};
use zeroize::Zeroizing;

use crate::helpers::{clock_file, set_clock, Ran, TestApp, ARKKU_BIN, EXIT_LIMIT};

/// Where the vault's clock stands in these tests.
pub const T0: OffsetDateTime = datetime!(2026-12-02 10:00:10 UTC);
pub const PASSWORD: &str = "correct horse battery staple";

/// Sets the vault's clock (and its commands') to stand at `at`.
pub fn clock_at(app: &TestApp, at: OffsetDateTime) {
    set_clock(app.dir.path(), TestTime::At(at));
}

/// Runs `arkku args…` against the test vault with `input` on stdin (the
/// harness's commands get none).
pub async fn arkku_with_stdin(app: &TestApp, args: &[&str], input: &str) -> Ran {
    let data = app.dir.path().join("data");
    let mut cmd = Command::new(ARKKU_BIN);
    cmd.args(args)
        .current_dir(app.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ARKKU_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1")
        .env("ARKKU_DATABASE_URL", &app.database_url)
        .env("ARKKU_DATA_DIR", data.as_os_str());
    let clock = clock_file(app.dir.path());
    if clock.exists() {
        cmd.env(TEST_CLOCK_ENV, OsStr::new(&clock));
    }
    let mut child = cmd.spawn().expect("start arkku");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output());
    let output = tokio::time::timeout(EXIT_LIMIT, output)
        .await
        .unwrap_or_else(|_| panic!("arkku {} did not finish", args.join(" ")))
        .expect("join")
        .expect("output");
    Ran {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `arkku users add NAME --role ROLE` with `password`; asserts success and
/// returns the `otpauth://` URI (the last line of stdout) and the output.
pub async fn add_user(app: &TestApp, name: &str, role: &str, password: &str) -> (String, Ran) {
    let r = arkku_with_stdin(
        app,
        &["users", "add", name, "--role", role],
        &format!("{password}\n"),
    )
    .await;
    assert!(
        r.status.success(),
        "users add failed\nstdout: {}\nstderr: {}",
        r.stdout,
        r.stderr
    );
    let uri = r.stdout.lines().last().expect("a last line").to_owned();
    (uri, r)
}

/// `arkku args…` (no stdin), asserting success.
pub async fn cli_ok(app: &TestApp, args: &[&str]) -> Ran {
    let r = app.cli(args).await;
    assert!(
        r.status.success(),
        "arkku {} failed\nstdout: {}\nstderr: {}",
        args.join(" "),
        r.stdout,
        r.stderr
    );
    r
}

/// The code an authenticator app holding `uri` shows at `at`.
pub fn code(uri: &str, at: OffsetDateTime) -> String {
    let totp = totp_rs::TOTP::from_url(uri).expect("the URI parses");
    totp.generate(u64::try_from(at.unix_timestamp()).expect("after 1970"))
}

/// What the QR code drawn in `stdout` (half blocks: each character two
/// modules, one above the other) says, read as a scanner would.
pub fn qr_in(stdout: &str) -> String {
    const SCALE: usize = 4;
    let rows: Vec<Vec<char>> = stdout
        .lines()
        .filter(|l| l.chars().count() > 20 && l.chars().all(|c| " █▀▄".contains(c)))
        .map(|l| l.chars().collect())
        .collect();
    let width = rows.iter().map(Vec::len).max().expect("a QR code") * SCALE;
    let height = rows.len() * 2 * SCALE;
    let mut image = rqrr::PreparedImage::prepare_from_bitmap(width, height, |x, y| {
        let (row, col) = (y / SCALE, x / SCALE);
        let c = rows[row / 2].get(col).copied().unwrap_or(' ');
        let upper = row % 2 == 0;
        c == '█' || (upper && c == '▀') || (!upper && c == '▄')
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in: {stdout}");
    grids[0].decode().expect("the QR code decodes").1
}

/// The base32 secret in an `otpauth://` URI.
pub fn secret_of(uri: &str) -> String {
    let (_, query) = uri.split_once('?').expect("a query");
    query
        .split('&')
        .find_map(|p| p.strip_prefix("secret="))
        .expect("a secret")
        .to_owned()
}

pub async fn sign_in(
    app: &TestApp,
    name: &str,
    password: &str,
    code: &str,
) -> Result<StaffAccount, SignInError> {
    let peer = "192.0.2.7".parse().ok();
    staff::sign_in(
        &app.state,
        name,
        Zeroizing::new(password.to_owned()),
        code,
        peer,
    )
    .await
}

/// Audit entries of `action` through `GET /v1/audit`, oldest first.
pub async fn audit_entries(app: &TestApp, action: &str) -> Vec<Value> {
    let r = app
        .request(
            Method::GET,
            &format!("/v1/audit?action={action}&limit=1000"),
            Some(&app.compliance()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["entries"].as_array().expect("entries").clone()
}
