//! Security rules (issue #9, item 5) through the public interfaces, `smppd check-config` and
//! `smppd run` as a process: the submit listener is loopback by default and a public one needs a
//! token; unauthenticated requests are refused with `unauthorized` and counted, and a connection
//! that does not authenticate within 10 s is closed; TLS to SMSCs
//! verifies certificates (an untrusted one fails the bind with a clear error; the explicit
//! opt-out binds and is logged loudly); the store is created 0600; secrets never reach metrics.
//! (Logs and `status` are covered by `tests/daemon.rs`
//! `no_password_or_token_in_logs_status_or_errors`.)

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smppd::sim::{SimConfig, Simulator};
use support::{Daemon, DaemonBuilder, smppd};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader as TokioBufReader};
use tokio::net::TcpStream;

const SMSC: &str = r#"
[[smsc]]
name = "op-a"
address = "127.0.0.1:2775"
system_id = "smppd"
password = "Pw9xQz"

[[route]]
name = "default"
smsc = ["op-a"]
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

#[test]
fn the_submit_listener_is_loopback_unless_a_token_guards_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No [listen] at all: loopback.
    let default = write(dir.path(), "default.toml", SMSC);
    let out = smppd(&["check-config", &default]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("submit on 127.0.0.1:2776"), "{stdout}");

    for public in ["0.0.0.0:2776", "[::]:2776", "192.0.2.7:2776"] {
        let text = format!("[listen]\nsubmit = \"{public}\"\n{SMSC}");
        let path = write(dir.path(), "public.toml", &text);
        // check-config: exit status 2, one line naming file, line, key and the remedy.
        let out = smppd(&["check-config", &path]);
        assert_eq!(out.status.code(), Some(2), "{public}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("public.toml:2:10: listen.submit:")
                && stderr.contains("is not a loopback address: set listen.token"),
            "{stderr}"
        );
        // run: refuses to start, says why, never listens.
        let out = smppd(&["run", "--config", &path]);
        assert!(!out.status.success(), "{public}: smppd run started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("listen.submit") && stderr.contains("set listen.token"),
            "{stderr}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("accepting submits"),
            "{out:?}"
        );
    }

    // With a token (at least 16 characters) a public address is allowed; a short one is not.
    let text =
        format!("[listen]\nsubmit = \"0.0.0.0:2776\"\ntoken = \"0123456789abcdef0123\"\n{SMSC}");
    let path = write(dir.path(), "token.toml", &text);
    assert!(smppd(&["check-config", &path]).status.success());
    let text = format!("[listen]\nsubmit = \"0.0.0.0:2776\"\ntoken = \"short\"\n{SMSC}");
    let path = write(dir.path(), "short.toml", &text);
    let out = smppd(&["check-config", &path]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("listen.token: a token must be at least 16"),
        "{stderr}"
    );
    assert!(!stderr.contains("short\""), "the token is echoed: {stderr}");
}

/// Starts `smppd run` with metrics, `[listen]` extras and the rest of the config, its store in
/// `dir/var` (created by the daemon); stderr goes to a file.
async fn start(dir: &Path, listen: &str, rest: &str) -> Daemon {
    DaemonBuilder::new(rest)
        .metrics()
        .listen(listen)
        .store_dir(Some(dir.join("var")))
        .level("info")
        .start()
        .await
}

fn sample(text: &str, name: &str, label: &str) -> f64 {
    support::metrics::sum(text, name, &[label])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_are_refused_counted_and_secrets_stay_out_of_metrics() {
    let sim = Simulator::start(SimConfig::new("127.0.0.1:0"))
        .await
        .expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "tok-9f8e7d6c5b4a3210";
    let rest = SMSC.replace("127.0.0.1:2775", &sim.addr().to_string());
    let d = start(dir.path(), &format!("token = \"{token}\""), &rest).await;

    // A client that connects and never authenticates (it could hold a connection slot).
    let idle = TcpStream::connect(&d.submit).await.expect("connect");
    let mut c = d.client().await;
    let refused = [
        json!({"op":"submit","to":"+46701234567","from":"ACME","text":"x"}),
        json!({"op":"status"}),
        json!({"op":"ping"}),
        json!({"op":"auth","token":"tok-wrong-0000000000"}),
        json!({"op":"auth","token":""}),
    ];
    for req in &refused {
        let v = c.request(req).await;
        assert_eq!(v["error"]["code"], "unauthorized", "{req} → {v}");
        assert!(!v.to_string().contains(token), "{v}");
    }
    // Another connection is not authenticated by this one's later success.
    let mut other = d.client().await;
    let v = c.request(&json!({"op":"auth","token":token})).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        other.request(&json!({"op":"ping"})).await["error"]["code"],
        "unauthorized"
    );
    let v = c
        .request(&json!({"op":"submit","to":"+46701234567","from":"ACME","text":"x"}))
        .await;
    assert_eq!(v["ok"], true, "{v}");

    let m = d.scrape().await;
    assert_eq!(sample(&m, "smppd_unauthorized_total", ""), 6.0, "{m}");
    assert_eq!(
        sample(&m, "smppd_messages_rejected_total", "code=\"unauthorized\""),
        6.0
    );
    for secret in [token, "Pw9xQz"] {
        assert!(!m.contains(secret), "{secret} in /metrics");
    }
    let status = c.request(&json!({"op":"status"})).await.to_string();
    assert!(!status.contains("Pw9xQz") && !status.contains(token));

    // Connections that never authenticate are told so and closed after AUTH_TIMEOUT (10 s);
    // the authenticated one stays.
    let mut idle = TokioBufReader::new(idle);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(30), idle.read_line(&mut line))
        .await
        .expect("closed in time")
        .expect("read");
    let v: Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(v["error"]["code"], "unauthorized", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("within 10 s"),
        "{v}"
    );
    let mut rest = String::new();
    assert_eq!(
        idle.read_to_string(&mut rest).await.expect("eof"),
        0,
        "{rest}"
    );
    assert_eq!(c.request(&json!({"op":"ping"})).await["ok"], true);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // `idle` and `other` were both closed unauthenticated.
        let n = sample(&d.scrape().await, "smppd_unauthorized_total", "");
        if n == 8.0 {
            break;
        }
        assert!(Instant::now() < deadline, "smppd_unauthorized_total = {n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The store and its WAL files: owner read/write only, whatever the umask.
    let var = dir.path().join("var");
    let mut seen = 0;
    for entry in std::fs::read_dir(&var).expect("var") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("smppd.db") {
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name} has mode {:o}", mode & 0o777);
            seen += 1;
        }
    }
    assert!(
        seen >= 2,
        "expected the database and its WAL in {}",
        var.display()
    );
    drop(d);
}

fn tls_server(cert: &rcgen::CertifiedKey<rcgen::KeyPair>) -> Arc<rustls::ServerConfig> {
    let chain = vec![cert.cert.der().clone()];
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).expect("key");
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("cert");
    Arc::new(cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_smscs_verifies_certificates_and_the_opt_out_is_loud() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let stranger = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), cert.cert.pem()).expect("ca");
    std::fs::write(dir.path().join("other-ca.pem"), stranger.cert.pem()).expect("ca");
    let mut sc = SimConfig::new("127.0.0.1:0");
    sc.tls = Some(tls_server(&cert));
    let sim = Simulator::start(sc).await.expect("tls sim");
    let addr = format!("localhost:{}", sim.addr().port());
    let smsc = |name: &str, tls: &str| {
        format!(
            "[[smsc]]\nname = \"{name}\"\naddress = \"{addr}\"\ntls = {tls}\nsystem_id = \"smppd\"\n\
             password = \"Pw9xQz\"\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\n"
        )
    };
    let ca = dir.path().join("ca.pem");
    let other = dir.path().join("other-ca.pem");
    let rest = format!(
        "{}{}{}[[route]]\nname = \"trusted\"\nprefix = [\"+46\"]\nsmsc = [\"op-trusted\"]\n\
         [[route]]\nname = \"insecure\"\nprefix = [\"+47\"]\nsmsc = [\"op-insecure\"]\n\
         [[route]]\nname = \"default\"\nsmsc = [\"op-untrusted\"]\n",
        smsc("op-trusted", &format!("{{ ca = \"{}\" }}", ca.display())),
        smsc(
            "op-untrusted",
            &format!("{{ ca = \"{}\" }}", other.display())
        ),
        smsc("op-insecure", "{ insecure = true }"),
    );
    let d = start(dir.path(), "", &rest).await;
    let mut c = d.client().await;

    // The certificate is not signed by the configured CA: the bind never comes up, and says why.
    let binds = c
        .wait_binds("op-untrusted", "a certificate error", |b| {
            b["state"] != "Bound"
                && b["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("certificate"))
        })
        .await;
    let reason = binds[0]["last_error"].as_str().unwrap_or("").to_owned();
    assert!(reason.contains("tls handshake"), "{reason}");
    // Trusted CA and the explicit opt-out both bind.
    c.wait_binds("op-trusted", "bound", |b| b["state"] == "Bound")
        .await;
    c.wait_binds("op-insecure", "bound", |b| b["state"] == "Bound")
        .await;
    for to in ["+46701234567", "+4791234567"] {
        let v = c
            .request(&json!({"op":"submit","to":to,"from":"ACME","text":"over TLS"}))
            .await;
        assert_eq!(v["ok"], true, "{v}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.stats().submits < 2 {
        assert!(Instant::now() < deadline, "{:?}", sim.stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sim.stats().binds >= 2);

    let log = std::fs::read_to_string(&d.log).expect("log");
    let loud: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("TLS CERTIFICATE VERIFICATION IS DISABLED"))
        .collect();
    assert!(!loud.is_empty(), "opt-out not logged: {log}");
    assert!(
        loud.iter()
            .all(|l| l.contains("WARN") && l.contains("op-insecure")),
        "{loud:?}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("op-untrusted") && l.contains("certificate")),
        "the bind failure is not logged: {log}"
    );
    assert!(!log.contains("Pw9xQz"), "password in the log");
    drop(d);
}
