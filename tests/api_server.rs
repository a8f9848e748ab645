//! The submit-protocol server over real sockets, with a test handler: pipelining and
//! out-of-order responses, bad lines, authentication, slow clients, Unix sockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use serde_json::value::RawValue;
use smppd::api::protocol::{ErrorCode, Reply, Request};
use smppd::api::server::{
    Handler, Listener, Outcome, PIPELINE, PIPELINE_BYTES, Peer, Settings, serve,
};
use smppd::config::{ListenAddr, Secret};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Echo {
    refused: AtomicUsize,
    /// Queries for "hold" that have started; they answer once `gate` has a permit for each.
    held: AtomicUsize,
    gate: tokio::sync::Semaphore,
}

impl Default for Echo {
    fn default() -> Self {
        Echo {
            refused: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            gate: tokio::sync::Semaphore::new(0),
        }
    }
}

impl Handler for Echo {
    async fn handle(
        &self,
        request: Request,
        reference: Option<Box<RawValue>>,
        _peer: &Peer,
    ) -> Outcome {
        match request {
            // A query for "slow" answers after the ones behind it.
            Request::Query { id } => {
                if id == "hold" {
                    self.held.fetch_add(1, Ordering::SeqCst);
                    let permit = self.gate.acquire().await.expect("gate open");
                    permit.forget();
                }
                if id == "slow" {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Outcome::Line(Reply::ok(
                    reference.as_deref(),
                    &serde_json::json!({ "id": id }),
                ))
            }
            Request::Subscribe { after } => {
                let (tx, rx) = mpsc::channel(4);
                tokio::spawn(async move {
                    for seq in after + 1..=after + 3 {
                        if tx
                            .send(format!("{{\"event\":\"test\",\"seq\":{seq}}}\n"))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                });
                Outcome::Stream(Reply::ok(reference.as_deref(), &serde_json::json!({})), rx)
            }
            other => Outcome::Line(Reply::ok(
                reference.as_deref(),
                &serde_json::json!({ "op": other.op() }),
            )),
        }
    }
    fn refused(&self, _code: ErrorCode) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }
}

struct Server {
    addr: ListenAddr,
    handler: Arc<Echo>,
    stop: CancellationToken,
    close: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(listen: ListenAddr, token: Option<&str>, write_timeout: Duration) -> Server {
    let listener = Listener::bind(&listen).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handler = Arc::new(Echo::default());
    let stop = CancellationToken::new();
    let close = CancellationToken::new();
    let settings = Settings {
        listen: addr.clone(),
        token: token.map(Secret::new),
        max_connections: 64,
        write_timeout,
    };
    let task = tokio::spawn(serve(
        listener,
        settings,
        handler.clone(),
        stop.clone(),
        close.clone(),
    ));
    Server {
        addr,
        handler,
        stop,
        close,
        task,
    }
}

impl Server {
    async fn stop(self) {
        self.stop.cancel();
        self.close.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("server stops")
            .expect("no panic");
    }
    async fn connect(&self) -> Client<TcpStream> {
        let ListenAddr::Tcp(a) = &self.addr else {
            panic!("tcp")
        };
        Client::new(TcpStream::connect(a).await.expect("connect"))
    }
}

struct Client<S> {
    r: BufReader<tokio::io::ReadHalf<S>>,
    w: tokio::io::WriteHalf<S>,
}

impl<S: AsyncRead + AsyncWrite> Client<S> {
    fn new(s: S) -> Self {
        let (r, w) = tokio::io::split(s);
        Client {
            r: BufReader::new(r),
            w,
        }
    }
    async fn send(&mut self, line: &[u8]) {
        self.w.write_all(line).await.expect("write");
    }
    async fn recv(&mut self) -> Value {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(5), self.r.read_line(&mut line))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "connection closed");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
    }
}

fn local() -> ListenAddr {
    ListenAddr::Tcp("127.0.0.1:0".parse().expect("addr"))
}

#[tokio::test]
async fn pipelined_requests_answer_out_of_order_with_their_refs() {
    let srv = start(local(), None, Duration::from_secs(5)).await;
    let mut c = srv.connect().await;
    c.send(b"{\"op\":\"query\",\"ref\":1,\"id\":\"slow\"}\n{\"op\":\"query\",\"ref\":{\"k\":[2]},\"id\":\"fast\"}\n{\"op\":\"ping\",\"ref\":\"three\"}\n").await;
    let mut got = vec![c.recv().await, c.recv().await, c.recv().await];
    assert_eq!(got[2]["ref"], 1, "the slow one comes last: {got:?}");
    got.sort_by_key(|v| v["ref"].to_string());
    assert!(got.iter().all(|v| v["ok"] == true), "{got:?}");
    assert!(
        got.iter()
            .any(|v| v["ref"] == serde_json::json!({"k":[2]}) && v["id"] == "fast")
    );
    srv.stop().await;
}

#[tokio::test]
async fn bad_lines_get_bad_request_and_the_connection_stays_usable() {
    let srv = start(local(), None, Duration::from_secs(5)).await;
    let mut c = srv.connect().await;
    c.send(b"this is not json\n").await;
    let v = c.recv().await;
    assert_eq!(
        (
            v["ok"].clone(),
            v["error"]["code"].clone(),
            v["ref"].clone()
        ),
        (false.into(), "bad_request".into(), Value::Null)
    );
    c.send(b"{\"op\":\"ping\",\"ref\":5,\"x\":\"\xff\xfe\"}\n")
        .await;
    assert_eq!(c.recv().await["error"]["code"], "bad_request");
    let mut long = vec![b'{'; 70 * 1024];
    long.push(b'\n');
    c.send(&long).await;
    let v = c.recv().await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("at most"),
        "{v}"
    );
    c.send(b"\n{\"op\":\"ping\",\"ref\":9}\n").await;
    let v = c.recv().await;
    assert_eq!((v["ref"].clone(), v["ok"].clone()), (9.into(), true.into()));
    assert_eq!(srv.handler.refused.load(Ordering::Relaxed), 3);
    srv.stop().await;
}

#[tokio::test]
async fn a_token_is_required_when_configured() {
    let srv = start(local(), Some("0123456789abcdef"), Duration::from_secs(5)).await;
    let mut c = srv.connect().await;
    c.send(b"{\"op\":\"ping\",\"ref\":1}\n").await;
    assert_eq!(c.recv().await["error"]["code"], "unauthorized");
    c.send(b"{\"op\":\"auth\",\"ref\":2,\"token\":\"wrong-token-value\"}\n")
        .await;
    assert_eq!(c.recv().await["error"]["code"], "unauthorized");
    c.send(b"{\"op\":\"auth\",\"ref\":3,\"token\":\"0123456789abcdef\"}\n")
        .await;
    assert_eq!(c.recv().await["ok"], true);
    c.send(b"{\"op\":\"ping\",\"ref\":4}\n").await;
    assert_eq!(c.recv().await["ok"], true);
    srv.stop().await;
}

#[tokio::test]
async fn streams_follow_their_first_line() {
    let srv = start(local(), None, Duration::from_secs(5)).await;
    let mut c = srv.connect().await;
    c.send(b"{\"op\":\"subscribe\",\"ref\":\"s\",\"after\":10}\n")
        .await;
    assert_eq!(c.recv().await["ok"], true);
    for seq in 11..=13 {
        assert_eq!(c.recv().await["seq"], seq);
    }
    srv.stop().await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_disconnected_and_others_are_served() {
    let srv = start(local(), None, Duration::from_millis(300)).await;
    let ListenAddr::Tcp(a) = &srv.addr else {
        panic!("tcp")
    };
    let mut hog = TcpStream::connect(a).await.expect("connect");
    // Write far more requests than the socket buffers and the pipeline can hold, never reading.
    let burst = "{\"op\":\"ping\",\"ref\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n".repeat(2000);
    let writer = tokio::spawn(async move {
        for _ in 0..200 {
            if hog.write_all(burst.as_bytes()).await.is_err() {
                return true; // the server closed on us
            }
        }
        false
    });
    let disconnected = tokio::time::timeout(Duration::from_secs(20), writer)
        .await
        .expect("the server disconnects the hog in time")
        .expect("no panic");
    assert!(disconnected);
    let mut c = srv.connect().await;
    c.send(b"{\"op\":\"ping\",\"ref\":1}\n").await;
    assert_eq!(c.recv().await["ok"], true);
    srv.stop().await;
}

#[tokio::test]
async fn unix_socket_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("submit.sock");
    let srv = start(ListenAddr::Unix(path.clone()), None, Duration::from_secs(5)).await;
    let mut c = Client::new(
        tokio::net::UnixStream::connect(&path)
            .await
            .expect("connect"),
    );
    c.send(b"{\"op\":\"ping\",\"ref\":1}\n").await;
    assert_eq!(c.recv().await["op"], "ping");
    srv.stop().await;
    assert!(!path.exists(), "socket file removed at stop");
}

/// Sends `lines` "hold" queries of `len` bytes each (without the newline) on one connection
/// that does not read, waits until the handler has started `expected` of them, checks that no
/// more start, then opens the gate and reads every answer.
async fn in_progress_bound(len: usize, lines: usize, expected: usize) {
    let srv = start(local(), None, Duration::from_secs(30)).await;
    let c = srv.connect().await;
    let Client { mut r, mut w } = c;
    let prefix = r#"{"op":"query","id":"hold","ref":""#;
    let line = format!("{prefix}{}\"}}\n", "x".repeat(len - prefix.len() - 2));
    assert_eq!(line.len(), len + 1);
    let burst = line.repeat(lines);
    let writer = tokio::spawn(async move {
        w.write_all(burst.as_bytes()).await.expect("write");
        w
    });
    let held = || srv.handler.held.load(Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(10), async {
        while held() < expected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} of {expected} requests started", held()));
    // Had the bound not held, the rest would start now: they are all written or buffered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(held(), expected, "requests in progress at once");
    srv.handler.gate.add_permits(lines);
    let mut answered = 0;
    let mut text = String::new();
    while answered < lines {
        text.clear();
        let n = tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut text))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "connection closed after {answered} answers");
        let v: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["ok"], true, "{v}");
        answered += 1;
    }
    assert_eq!(held(), lines, "every request ran");
    drop(writer.await.expect("writer"));
    srv.stop().await;
}

#[tokio::test]
async fn requests_in_progress_are_bounded_by_count() {
    // Small lines: the count bound (PIPELINE) is reached long before the byte bound.
    in_progress_bound(100, PIPELINE + 44, PIPELINE).await;
}

#[tokio::test]
async fn requests_in_progress_are_bounded_by_bytes() {
    // 8 KiB lines: reading stops once PIPELINE_BYTES of them are in progress, far below PIPELINE.
    let len = 8192;
    let expected = PIPELINE_BYTES.div_ceil(len);
    assert!(expected < PIPELINE);
    in_progress_bound(len, 100, expected).await;
}
