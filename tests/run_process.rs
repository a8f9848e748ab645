//! `smppd run` as an operator starts it: one daemon per store file, and log lines fit for a file
//! or journald (colour only on a terminal, never with `NO_COLOR`).

mod support;

use std::process::{Command, Stdio};

use support::{DaemonBuilder, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_smppd");

/// A daemon whose only SMSC is a closed port (the bind keeps failing and logs it at `warn`),
/// logging text at `info`.
fn closed_smsc() -> DaemonBuilder {
    let addr = format!("127.0.0.1:{}", free_port());
    DaemonBuilder::new(format!(
        r#"[[smsc]]
name = "op-a"
address = "{addr}"
system_id = "smppd"
password = "secret"
reconnect_min = "100ms"
reconnect_max = "200ms"
[[route]]
name = "default"
smsc = ["op-a"]
"#
    ))
    .level("info")
    .log(r#"format = "text""#)
}

#[test]
fn a_second_daemon_on_the_same_store_refuses_naming_the_file_and_the_holder() {
    let mut first = closed_smsc().start_blocking();
    let store = first.db.clone();

    let second = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&first.config)
        .output()
        .expect("run the second");
    assert!(!second.status.success(), "the second daemon must not run");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains(&store.display().to_string()), "{err}");
    let pid = first.pid().expect("the first runs");
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    assert!(err.contains("in use"), "{err}");

    // A holder that dies without cleaning up (SIGKILL) leaves no stale lock.
    first.kill();
    let mut third = first;
    third.spawn_blocking();
    let _ = third.stop();
    // And one stopped gracefully frees the file for the next one too.
    let mut fourth = third;
    fourth.spawn_blocking();
    let _ = fourth.stop();
}

/// Runs the daemon for a moment with stderr to a file (or, with `pty`, under `script`, which
/// gives it a terminal) and returns what it logged.
fn logs_of(no_color: Option<&str>, pty: bool) -> String {
    // Written, not started: the daemon runs under `timeout` or `script` below.
    let d = closed_smsc().build();
    let config = &d.config;
    let log = d.log.clone();
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
            .arg(config)
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
