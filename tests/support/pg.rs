//! A throwaway PostgreSQL cluster for one test: `initdb` in a temporary folder (as the
//! unprivileged `postgres` user when the tests run as root, since PostgreSQL refuses to run as
//! root), `pg_ctl start` on a free loopback port, `createdb smppd`; stopped and deleted on drop.
//!
//! PostgreSQL comes from Debian's `postgresql` package (`.ci/run` installs it). When it is not
//! installed the test fails naming the package: a test that could not run never passes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One running cluster with a database `smppd` owned by the user `smppd` (trust auth on
/// 127.0.0.1: the tests' connections need no password).
pub struct Pg {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    as_root: bool,
}

impl Pg {
    /// initdb + start + createdb; panics with the reason when any step fails.
    pub fn start() -> Pg {
        let bin = bindir();
        let as_root = is_root();
        let dir = std::env::temp_dir().join(format!(
            "smppd-pg-{}-{}",
            std::process::id(),
            super::free_port()
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster folder");
        if as_root {
            run(
                Command::new("chown").args(["postgres:postgres"]).arg(&dir),
                "chown",
            );
        }
        let pg = Pg {
            dir,
            bin,
            port: super::free_port(),
            as_root,
        };
        let data = pg.data();
        pg.tool(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "smppd",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        pg.start_server();
        pg.tool(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "smppd",
                "smppd",
            ],
        );
        pg
    }

    /// The URL of the `smppd` database, as `[store] url` takes it.
    pub fn url(&self) -> String {
        format!("postgres://smppd@127.0.0.1:{}/smppd", self.port)
    }

    /// Starts the server again after [`Self::stop`] (same port, same data).
    pub fn start_server(&self) {
        let data = self.data();
        let log = format!("{data}/../server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port, data
        );
        self.tool(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-o", &options, "start"],
        );
    }

    /// Turns TLS on (a self-signed certificate for 127.0.0.1 and localhost) and restarts the
    /// server; returns the certificate's PEM file, for `sslrootcert`.
    pub fn enable_tls(&self) -> PathBuf {
        let cert = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("a self-signed certificate");
        let data = PathBuf::from(self.data());
        let crt = data.join("server.crt");
        let key = data.join("server.key");
        std::fs::write(&crt, cert.cert.pem()).expect("write server.crt");
        std::fs::write(&key, cert.signing_key.serialize_pem()).expect("write server.key");
        let ca = self.dir.join("ca.pem");
        std::fs::write(&ca, cert.cert.pem()).expect("write ca.pem");
        if self.as_root {
            run(
                Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(&crt)
                    .arg(&key),
                "chown",
            );
        }
        run(Command::new("chmod").arg("600").arg(&key), "chmod");
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).expect("write postgresql.conf");
        self.stop();
        self.start_server();
        ca
    }

    /// Adds a role that must log in with `password` (SCRAM), ahead of the trust rule.
    pub fn add_password_role(&self, role: &str, password: &str) {
        self.psql(&format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'"));
        self.psql(&format!("GRANT ALL ON DATABASE smppd TO {role}"));
        let hba = PathBuf::from(self.data()).join("pg_hba.conf");
        let text = std::fs::read_to_string(&hba).expect("pg_hba.conf");
        let rule = format!("host all {role} 127.0.0.1/32 scram-sha-256\n");
        std::fs::write(&hba, rule + &text).expect("write pg_hba.conf");
        self.tool("pg_ctl", &["-D", &self.data(), "reload"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }

    /// `pg_ctl stop -m fast`: the server ends its sessions and stops, as a primary does in a
    /// planned failover.
    pub fn stop(&self) {
        self.tool("pg_ctl", &["-D", &self.data(), "-w", "-m", "fast", "stop"]);
    }

    /// Runs SQL with `psql` and returns its unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> String {
        let out = self.tool(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "smppd",
                "-d",
                "smppd",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn tool(&self, name: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(name);
        let mut cmd = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args).current_dir(&self.dir);
        run(&mut cmd, name)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd.args(["-D", &data, "-m", "immediate", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what} ({cmd:?}): {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// The newest PostgreSQL's programs folder (`/usr/lib/postgresql/N/bin`, Debian's layout).
fn bindir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b).unwrap_or_else(|| {
        panic!("PostgreSQL is not installed (no /usr/lib/postgresql/N/bin/initdb): apt-get install postgresql")
    })
}

/// A tokio runtime that runs PostgreSQL stores opened from plain (non-async) test code: the
/// store's writer and sequencer tasks live on it, and `Pending::wait` works from the test's
/// thread. Dropped on a thread of its own, so it may be dropped inside an async test too.
pub struct StoreRuntime {
    rt: Option<tokio::runtime::Runtime>,
}

impl StoreRuntime {
    pub fn new() -> StoreRuntime {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime for the store");
        StoreRuntime { rt: Some(rt) }
    }

    /// Opens the store of `url` as instance `instance`.
    pub fn open(
        &self,
        url: &str,
        instance: &str,
        settings: smppd::store::Settings,
    ) -> Result<(smppd::store::Store, smppd::store::Recovery), smppd::store::StoreError> {
        let postgres = smppd::config::Postgres {
            url: url.to_owned(),
            password_file: None,
            pool_size: 8,
        };
        let mut options = smppd::store::PostgresOptions::new(postgres, instance);
        options.settings = settings;
        self.block_on(smppd::store::Store::open_postgres(options))
    }

    /// Runs a future on the store's runtime from any thread (async tests included).
    pub fn block_on<F: std::future::Future + Send>(&self, f: F) -> F::Output
    where
        F::Output: Send,
    {
        let handle = self.rt.as_ref().expect("runtime").handle().clone();
        std::thread::scope(|s| {
            s.spawn(move || handle.block_on(f))
                .join()
                .expect("the store's runtime thread")
        })
    }
}

impl Default for StoreRuntime {
    fn default() -> StoreRuntime {
        StoreRuntime::new()
    }
}

impl Drop for StoreRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            let _ = std::thread::spawn(move || drop(rt)).join();
        }
    }
}
