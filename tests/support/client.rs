//! A client of the submit protocol (NDJSON over TCP) for tests: one connection, requests
//! numbered with `ref` ([`Client::call`]) or sent as they are ([`Client::request`], for requests
//! whose exact bytes matter), raw writes for malformed input, and the polls every end-to-end test
//! needs (binds up, a message final).
//!
//! It never retries or reconnects: a test sees every answer and every closed connection.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::daemon::all_bound;

pub struct Client {
    pub r: BufReader<OwnedReadHalf>,
    pub w: OwnedWriteHalf,
    next: u64,
    /// How long [`Client::line`] waits for an answer.
    timeout: Duration,
}

impl Client {
    pub async fn connect(addr: &str) -> Client {
        let s = TcpStream::connect(addr).await.expect("connect");
        let (r, w) = s.into_split();
        Client {
            r: BufReader::new(r),
            w,
            next: 0,
            timeout: Duration::from_secs(10),
        }
    }

    /// Waits up to `timeout` for each answer (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// Writes bytes as they are (malformed lines, several lines at once).
    pub async fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).await.expect("write");
    }

    /// The next answer line, parsed; panics when none comes in time or the connection closed.
    pub async fn line(&mut self) -> Value {
        let mut line = String::new();
        let n = tokio::time::timeout(self.timeout, self.r.read_line(&mut line))
            .await
            .expect("a line in time")
            .expect("read");
        assert!(n > 0, "connection closed");
        serde_json::from_str(&line).unwrap_or_else(|e| {
            let start: String = line.chars().take(200).collect();
            panic!("not JSON ({e}): {start:?}")
        })
    }

    /// Sends `req` as it is and reads one answer.
    pub async fn request(&mut self, req: &Value) -> Value {
        let mut line = req.to_string();
        line.push('\n');
        self.send(line.as_bytes()).await;
        self.line().await
    }

    /// Sends `req` with the next `ref` and checks the answer carries it.
    pub async fn call(&mut self, mut req: Value) -> Value {
        self.next += 1;
        req["ref"] = json!(self.next);
        let v = self.request(&req).await;
        assert_eq!(v["ref"], json!(self.next), "{v}");
        v
    }

    pub async fn submit(&mut self, to: &str, text: &str) -> Value {
        self.call(json!({"op":"submit","to":to,"from":"ACME","text":text}))
            .await
    }

    /// Waits until every bind of the named SMSCs is bound (status op).
    pub async fn wait_bound(&mut self, smscs: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.call(json!({"op":"status"})).await;
            let up = smscs.iter().all(|name| {
                v["smscs"].as_array().is_some_and(|list| {
                    list.iter()
                        .any(|s| s["name"] == *name && all_bound(&s["binds"]))
                })
            });
            if up {
                return;
            }
            assert!(Instant::now() < deadline, "binds not up: {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `status` until `pred` holds for every bind of the named SMSC (and it has one);
    /// returns its binds, or panics with the last status after 15 s.
    pub async fn wait_binds(
        &mut self,
        smsc: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let v = self.request(&json!({"op":"status"})).await;
            let binds = v["smscs"]
                .as_array()
                .and_then(|l| l.iter().find(|s| s["name"] == smsc))
                .map(|s| s["binds"].clone())
                .unwrap_or(Value::Null);
            if binds
                .as_array()
                .is_some_and(|b| !b.is_empty() && b.iter().all(&pred))
            {
                return binds;
            }
            assert!(Instant::now() < deadline, "{smsc}: {what}: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `query` until the message reaches a final state.
    pub async fn final_state(&mut self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.call(json!({"op":"query","id":id})).await;
            assert_eq!(v["ok"], true, "{v}");
            let state = v["message"]["state"].as_str().unwrap_or("").to_owned();
            if !["scheduled", "queued", "submitted"].contains(&state.as_str()) {
                return v["message"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "message {id} stuck in {state}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
