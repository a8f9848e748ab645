//! The README quick start, exactly as written, on the built binary: `smppd run` with the shipped
//! default config (two embedded simulators), then `smppd send … --wait`, `smppd status` and
//! `smppd reports`. Runs in a scratch copy of `conf/` so the repository stays clean.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn readme_quick_start_delivers_a_message() {
    let bin = env!("CARGO_BIN_EXE_smppd");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("conf")).expect("mkdir");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/conf/smppd.toml"),
        dir.path().join("conf/smppd.toml"),
    )
    .expect("copy config");

    // README: `smppd run`
    let mut daemon = Command::new(bin)
        .arg("run")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smppd run");
    let mut first = String::new();
    BufReader::new(daemon.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read");
    assert!(
        first.contains("accepting submits on 127.0.0.1:2776"),
        "{first:?}"
    );

    // README: `smppd status` until both binds are up.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = Command::new(bin)
            .arg("status")
            .current_dir(dir.path())
            .output()
            .expect("status");
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && text.matches(" Bound ").count() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "binds not up: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // README: `smppd send --to +46701234567 --text "Hej världen" --wait`
    let out = Command::new(bin)
        .args([
            "send",
            "--to",
            "+46701234567",
            "--text",
            "Hej världen",
            "--wait",
        ])
        .current_dir(dir.path())
        .output()
        .expect("send");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("accepted ") && text.contains("route nordics"),
        "{text}"
    );
    assert!(text.contains(": delivered after"), "{text}");

    // README: `smppd reports`
    let out = Command::new(bin)
        .arg("reports")
        .current_dir(dir.path())
        .output()
        .expect("reports");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("+46701234567") && text.contains("delivered"),
        "{text}"
    );

    // SIGTERM: a clean stop.
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(Some(s)) = daemon.try_wait() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = daemon.kill();
            panic!("no clean stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}
