//! `smppd run` as an operator starts it: one daemon per store file, and log lines fit for a file
//! or journald (colour only on a terminal, never with `NO_COLOR`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smppd");

/// A config whose only SMSC is a closed port (the bind keeps failing and logs it at `warn`), on a
/// store in `dir`.
fn write_config(dir: &Path, store: &Path) -> std::path::PathBuf {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let conf = format!(
        r#"[listen]
submit = "127.0.0.1:0"
[store]
path = "{store}"
[log]
format = "text"
level = "info"
[[smsc]]
name = "op-a"
address = "{addr}"
system_id = "smppd"
password = "secret"
reconnect_min = "100ms"
reconnect_max = "200ms"
[[route]]
name = "default"
smsc = ["op-a"]
"#,
        store = store.display()
    );
    let path = dir.join(format!("smppd-{}.toml", rand_suffix()));
    std::fs::write(&path, conf).expect("write config");
    path
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Starts `smppd run`, waits for its "accepting submits" line.
fn start(config: &Path, stderr: Stdio) -> Child {
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn smppd run");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert!(line.contains("accepting submits"), "{line:?}");
    child
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "smppd did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_second_daemon_on_the_same_store_refuses_naming_the_file_and_the_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("smppd.db");
    let config = write_config(dir.path(), &store);
    let mut first = start(&config, Stdio::null());

    let second = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("run the second");
    assert!(!second.status.success(), "the second daemon must not run");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains(&store.display().to_string()), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    assert!(err.contains("in use"), "{err}");

    // A holder that dies without cleaning up (SIGKILL) leaves no stale lock.
    first.kill().expect("kill");
    first.wait().expect("wait");
    let mut third = start(&config, Stdio::null());
    terminate(&mut third);
    // And one stopped gracefully frees the file for the next one too.
    let mut fourth = start(&config, Stdio::null());
    terminate(&mut fourth);
}

/// Runs the daemon for a moment with stderr to a file (or, with `pty`, under `script`, which
/// gives it a terminal) and returns what it logged.
fn logs_of(no_color: Option<&str>, pty: bool) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &dir.path().join("smppd.db"));
    let log = dir.path().join("log");
    let mut cmd = if pty {
        // `script` runs the command on a pseudo-terminal and copies what it wrote into `log`.
        let inner = format!(
            "timeout -s TERM 2 {BIN} run --config {} >/dev/null",
            config.display()
        );
        let mut c = Command::new("script");
        c.args(["-q", "-e", "-c", &inner]).arg(&log);
        c.stdout(Stdio::null());
        c
    } else {
        let mut c = Command::new("timeout");
        c.args(["-s", "TERM", "2", BIN, "run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        c
    };
    cmd.env_remove("NO_COLOR");
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let status = cmd.status().expect("run smppd");
    assert!(status.code().is_some(), "{status}");
    let text = std::fs::read_to_string(&log).expect("read log");
    assert!(text.contains("bind down"), "expected log lines: {text}");
    text
}

#[test]
fn log_lines_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    let to_file = logs_of(None, false);
    assert!(
        !to_file.contains('\u{1b}'),
        "escapes in a log file: {to_file:?}"
    );
    let on_terminal = logs_of(None, true);
    assert!(
        on_terminal.contains("\u{1b}["),
        "no colour on a terminal: {on_terminal:?}"
    );
    let no_color = logs_of(Some("1"), true);
    assert!(
        !no_color.contains('\u{1b}'),
        "escapes despite NO_COLOR: {no_color:?}"
    );
}
