//! The submit-protocol server: listeners, connections, pipelining, authentication, back-pressure.
//!
//! Owns: accepting connections (TCP or Unix socket, at most `max_connections` at once), reading
//! lines (at most [`MAX_LINE`] bytes; a longer line is answered `bad_request` and skipped, the
//! connection stays usable), running up to [`PIPELINE`] requests of one connection concurrently
//! (responses may come out of order; each echoes its `ref`), writing responses, and dropping
//! clients that stop reading. What a request *does* is the [`Handler`]'s business.
//!
//! With a token, a connection that has not authenticated within [`AUTH_TIMEOUT`] is closed
//! (answered `unauthorized` first), so unauthenticated clients cannot hold every slot.
//!
//! Must never buffer without bound: a connection holds at most `PIPELINE` requests in progress
//! (and at most [`PIPELINE_BYTES`] of their lines) and `PIPELINE` unwritten responses; when the client does not read, reading stops too, and a
//! client that leaves a response unwritten for the write timeout is disconnected.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::{Decoder, FramedRead};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::protocol::{ApiError, ErrorCode, MAX_LINE, Reply, Request, parse_line};
use crate::config::{ListenAddr, Secret};

/// Requests of one connection in progress at once.
pub const PIPELINE: usize = 256;
/// Bytes of request lines one connection may have in progress at once. 256 ordinary requests
/// (a few hundred bytes each) stay far below it; it bounds what a client that pipelines large
/// requests and never reads makes the daemon hold (each request in progress keeps its parsed
/// request, its `ref` and then its response until the response is queued).
pub const PIPELINE_BYTES: usize = 256 * 1024;
/// Responses gathered into one write (bytes), at most: the channel holds at most
/// [`PIPELINE`] lines, so this only caps how much a single write carries. 256 ordinary
/// responses (about 100 bytes each) fit in one; the cap matters for a client that does not
/// read, whose blocked write holds this buffer until `write_timeout` (at 256 KiB it grew to
/// 512 KiB per slow reader).
const WRITE_BATCH: usize = 64 * 1024;
/// Default for [`Settings::write_timeout`].
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// When a token is configured, a connection must authenticate within this time of connecting.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// What a handled request produces.
pub enum Outcome {
    /// One response line (with its `\n`).
    Line(String),
    /// A response line, then every line from the receiver until it closes (event streams).
    Stream(String, mpsc::Receiver<String>),
}

/// Facts about the connection a request came on.
#[derive(Debug, Clone)]
pub struct Peer {
    /// `ip:port`, or `unix` for a Unix-socket client.
    pub addr: String,
}

/// The behaviour behind the protocol (the daemon, or a test double).
pub trait Handler: Send + Sync + 'static {
    /// Handles a validated request. `reference` is the client's `ref`, to be echoed.
    fn handle(
        &self,
        request: Request,
        reference: Option<Box<RawValue>>,
        peer: &Peer,
    ) -> impl Future<Output = Outcome> + Send;

    /// Called for each request refused before reaching [`Handler::handle`] (bad lines,
    /// unauthorized), for metrics.
    fn refused(&self, _code: ErrorCode) {}
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: ListenAddr,
    pub token: Option<Secret>,
    pub max_connections: usize,
    /// A client that does not take a response within this time is disconnected.
    pub write_timeout: Duration,
}

/// A bound listener, ready to serve.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds the configured address. A stale Unix socket file (left by a crashed daemon) is
    /// replaced only if nothing answers on it.
    pub async fn bind(addr: &ListenAddr) -> io::Result<Listener> {
        match addr {
            ListenAddr::Tcp(a) => Ok(Listener::Tcp(TcpListener::bind(a).await?)),
            ListenAddr::Unix(path) => {
                if path.exists() {
                    if tokio::net::UnixStream::connect(path).await.is_ok() {
                        return Err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            format!("{} is in use by a running process", path.display()),
                        ));
                    }
                    std::fs::remove_file(path)?;
                }
                Ok(Listener::Unix(UnixListener::bind(path)?, path.clone()))
            }
        }
    }

    /// The bound address as `ListenAddr` (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<ListenAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(ListenAddr::Tcp),
            Listener::Unix(_, p) => Ok(ListenAddr::Unix(p.clone())),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Serves until `stop_accepting` is cancelled; open connections go on (the handler answers
/// `shutting_down` to new work while the daemon drains) until `close` is cancelled, when they
/// stop reading, finish the requests in progress, and close. Returns when all have closed.
pub async fn serve<H: Handler>(
    listener: Listener,
    settings: Settings,
    handler: Arc<H>,
    stop_accepting: CancellationToken,
    close: CancellationToken,
) {
    let shutdown = stop_accepting;
    let limit = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let tracker = TaskTracker::new();
    let cx = ConnContext {
        handler,
        token: settings.token.map(Arc::new),
        close,
        write_timeout: settings.write_timeout,
    };
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = accept(&listener) => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let cx = cx.clone();
                tracker.spawn(async move {
                    let _permit = permit;
                    let (r, w) = stream;
                    metrics::gauge!(crate::metrics::API_CONNECTIONS).increment(1.0);
                    connection(r, w, peer, cx).await;
                    metrics::gauge!(crate::metrics::API_CONNECTIONS).decrement(1.0);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning on the accept loop.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    tracker.close();
    tracker.wait().await;
}

type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

async fn accept(listener: &Listener) -> io::Result<((BoxRead, BoxWrite), Peer)> {
    match listener {
        Listener::Tcp(l) => {
            let (s, addr) = l.accept().await?;
            let _ = s.set_nodelay(true);
            let (r, w) = s.into_split();
            Ok((
                (Box::new(r), Box::new(w)),
                Peer {
                    addr: addr.to_string(),
                },
            ))
        }
        Listener::Unix(l, _) => {
            let (s, _) = l.accept().await?;
            let (r, w) = s.into_split();
            Ok((
                (Box::new(r), Box::new(w)),
                Peer {
                    addr: "unix".to_owned(),
                },
            ))
        }
    }
}

/// One line from the client, or the length of a line that was too long (already skipped).
enum Line {
    Ok(BytesMut),
    TooLong(usize),
}

/// Splits the byte stream at `\n` without requiring UTF-8 (invalid UTF-8 is a per-line error,
/// not a broken connection) and skips over-long lines without buffering them.
#[derive(Default)]
struct LineCodec {
    /// Bytes of an over-long line skipped so far; `Some` while discarding.
    discarding: Option<usize>,
    /// Where to resume scanning for `\n` in the buffer.
    scanned: usize,
}

impl Decoder for LineCodec {
    type Item = Line;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Line>> {
        let found = src[self.scanned..].iter().position(|b| *b == b'\n');
        match (found, self.discarding) {
            (Some(i), None) => {
                let end = self.scanned + i;
                self.scanned = 0;
                let mut line = src.split_to(end + 1);
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                if line.len() > MAX_LINE {
                    Ok(Some(Line::TooLong(line.len())))
                } else {
                    Ok(Some(Line::Ok(line)))
                }
            }
            (Some(i), Some(skipped)) => {
                let end = self.scanned + i;
                src.advance(end + 1);
                self.scanned = 0;
                self.discarding = None;
                Ok(Some(Line::TooLong(skipped + end)))
            }
            (None, None) => {
                if src.len() > MAX_LINE + 1 {
                    self.discarding = Some(src.len());
                    src.clear();
                    self.scanned = 0;
                } else {
                    self.scanned = src.len();
                }
                Ok(None)
            }
            (None, Some(skipped)) => {
                self.discarding = Some(skipped + src.len());
                src.clear();
                self.scanned = 0;
                Ok(None)
            }
        }
    }
}

/// What every connection of one server shares.
struct ConnContext<H> {
    handler: Arc<H>,
    token: Option<Arc<Secret>>,
    /// Cancelled when the daemon closes connections (end of a graceful stop).
    close: CancellationToken,
    write_timeout: Duration,
}

impl<H> Clone for ConnContext<H> {
    fn clone(&self) -> Self {
        ConnContext {
            handler: self.handler.clone(),
            token: self.token.clone(),
            close: self.close.clone(),
            write_timeout: self.write_timeout,
        }
    }
}

/// A request in progress; resolves to the bytes it was charged (its line's length).
type Running = Pin<Box<dyn Future<Output = usize> + Send>>;

/// Whether the connection goes on after a line was dealt with.
enum Flow {
    Continue,
    /// The client is gone (its responses can no longer be written): stop reading.
    Stop,
}

/// One client connection: reads lines, runs up to [`PIPELINE`] requests (and
/// [`PIPELINE_BYTES`] of their lines) at once, queues their responses for the writer task.
struct Connection<H> {
    cx: ConnContext<H>,
    peer: Arc<Peer>,
    authenticated: bool,
    /// Responses for the writer task (bounded: a client that does not read stops the reading).
    tx: mpsc::Sender<String>,
    /// Cancelled when the writer stopped (client gone or too slow).
    closed: CancellationToken,
    /// Requests in progress, awaited by this task itself (a task per request cost more than
    /// most requests). An event stream (subscribe) keeps its slot while it runs.
    running: FuturesUnordered<Running>,
    /// Sum of the lines of `running`, kept under [`PIPELINE_BYTES`].
    charged: usize,
    /// The daemon's share of each submit's latency (taken once per connection, not per line).
    submit_seconds: metrics::Histogram,
}

async fn connection<H: Handler>(reader: BoxRead, writer: BoxWrite, peer: Peer, cx: ConnContext<H>) {
    let (tx, rx) = mpsc::channel::<String>(PIPELINE);
    let closed = CancellationToken::new();
    let writer_task = tokio::spawn(write_responses(
        writer,
        rx,
        closed.clone(),
        peer.addr.clone(),
        cx.write_timeout,
    ));
    let mut conn = Connection {
        authenticated: cx.token.is_none(),
        cx,
        peer: Arc::new(peer),
        tx,
        closed,
        running: FuturesUnordered::new(),
        charged: 0,
        submit_seconds: metrics::histogram!(crate::metrics::API_SUBMIT_SECONDS),
    };
    conn.read_requests(FramedRead::with_capacity(
        reader,
        LineCodec::default(),
        8 * 1024,
    ))
    .await;
    conn.finish().await;
    let _ = writer_task.await;
}

/// The writer task: sends response lines, every response ready at once in one write (under
/// pipelined load a write per line was a third of the daemon's time in `send(2)`), and
/// disconnects a client that leaves a response unread for `write_timeout`.
async fn write_responses(
    mut writer: BoxWrite,
    mut rx: mpsc::Receiver<String>,
    closed: CancellationToken,
    peer: String,
    write_timeout: Duration,
) {
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    while let Some(line) = rx.recv().await {
        out.clear();
        out.extend_from_slice(line.as_bytes());
        // A store commit answers many requests at once; let their handlers run and queue
        // their lines before this write, so the burst goes out together.
        tokio::task::yield_now().await;
        while out.len() < WRITE_BATCH
            && let Ok(more) = rx.try_recv()
        {
            out.extend_from_slice(more.as_bytes());
        }
        let write = async {
            writer.write_all(&out).await?;
            writer.flush().await
        };
        match tokio::time::timeout(write_timeout, write).await {
            Ok(Ok(())) => {}
            // The client went away; nothing to report.
            Ok(Err(_)) => break,
            Err(_) => {
                metrics::counter!(crate::metrics::API_SLOW_CLIENTS).increment(1);
                tracing::info!(
                    peer = %peer,
                    timeout_ms = write_timeout.as_millis() as u64,
                    "client disconnected: it left a response unread for listen.write_timeout"
                );
                break;
            }
        }
    }
    closed.cancel();
    let _ = writer.shutdown().await;
}

impl<H: Handler> Connection<H> {
    /// Reads and starts requests until the client or the daemon closes, or the client is too
    /// slow to authenticate.
    async fn read_requests(&mut self, mut lines: FramedRead<BoxRead, LineCodec>) {
        // With a token, a connection that has not authenticated by then is closed, so that
        // unauthenticated clients cannot hold the `max_connections` slots.
        let auth_deadline = tokio::time::Instant::now() + AUTH_TIMEOUT;
        loop {
            let room = self.running.len() < PIPELINE && self.charged < PIPELINE_BYTES;
            let next = tokio::select! {
                _ = self.closed.cancelled() => return,
                _ = self.cx.close.cancelled() => return,
                _ = tokio::time::sleep_until(auth_deadline), if !self.authenticated => {
                    self.auth_timed_out().await;
                    return;
                }
                Some(done) = self.running.next(), if !self.running.is_empty() => {
                    self.charged -= done;
                    continue;
                }
                n = lines.next(), if room => n,
            };
            let flow = match next {
                None | Some(Err(_)) => return,
                Some(Ok(Line::TooLong(n))) => {
                    let e = ApiError::new(
                        ErrorCode::BadRequest,
                        format!("line is {n} bytes; at most {MAX_LINE} are accepted"),
                    );
                    self.refuse(None, &e).await
                }
                Some(Ok(Line::Ok(line))) => self.on_line(&line).await,
            };
            if let Flow::Stop = flow {
                return;
            }
        }
    }

    async fn auth_timed_out(&mut self) {
        self.cx.handler.refused(ErrorCode::Unauthorized);
        tracing::info!(peer = %self.peer.addr, "client disconnected: no auth within {AUTH_TIMEOUT:?}");
        let e = ApiError::new(
            ErrorCode::Unauthorized,
            format!(
                "not authenticated within {} s; closing",
                AUTH_TIMEOUT.as_secs()
            ),
        );
        let _ = self.tx.send(Reply::error(None, &e)).await;
    }

    /// Queues one response line.
    async fn answer(&mut self, line: String) -> Flow {
        match self.tx.send(line).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop,
        }
    }

    /// Answers a request refused before the handler, and counts it.
    async fn refuse(&mut self, reference: Option<&RawValue>, e: &ApiError) -> Flow {
        self.cx.handler.refused(e.code);
        self.answer(Reply::error(reference, e)).await
    }

    async fn on_line(&mut self, line: &[u8]) -> Flow {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Flow::Continue; // blank lines are keep-alives for line tools
        }
        let parsed = parse_line(line);
        let reference = parsed.reference;
        let request = match parsed.request {
            Err(e) => return self.refuse(reference.as_deref(), &e).await,
            Ok(r) => r,
        };
        if let Request::Auth { token: given } = &request {
            return self.authenticate(reference.as_deref(), given).await;
        }
        if !self.authenticated {
            let e = ApiError::new(
                ErrorCode::Unauthorized,
                "send {\"op\":\"auth\",\"token\":\"…\"} first",
            );
            return self.refuse(reference.as_deref(), &e).await;
        }
        self.start(request, reference, line.len());
        Flow::Continue
    }

    async fn authenticate(&mut self, reference: Option<&RawValue>, given: &str) -> Flow {
        match &self.cx.token {
            Some(t) if !constant_time_eq(t.expose().as_bytes(), given.as_bytes()) => {
                let e = ApiError::new(ErrorCode::Unauthorized, "wrong token");
                self.refuse(reference, &e).await
            }
            _ => {
                self.authenticated = true;
                self.answer(Reply::ok(reference, &serde_json::json!({})))
                    .await
            }
        }
    }

    /// Runs a request among the connection's requests in progress, charged `charge` bytes.
    fn start(&mut self, request: Request, reference: Option<Box<RawValue>>, charge: usize) {
        let handler = self.cx.handler.clone();
        let peer = self.peer.clone();
        let tx = self.tx.clone();
        let stop = [self.closed.clone(), self.cx.close.clone()];
        self.charged += charge;
        let timed = matches!(request, Request::Submit(_))
            .then(|| (std::time::Instant::now(), self.submit_seconds.clone()));
        self.running.push(Box::pin(async move {
            match handler.handle(request, reference, &peer).await {
                Outcome::Line(l) => {
                    let _ = tx.send(l).await;
                    if let Some((started, h)) = timed {
                        h.record(started.elapsed().as_secs_f64());
                    }
                }
                Outcome::Stream(first, events) => {
                    if tx.send(first).await.is_ok() {
                        stream_events(events, &tx, &stop).await;
                    }
                }
            }
            charge
        }));
    }

    /// Lets in-progress requests finish and their responses be written, then closes.
    async fn finish(mut self) {
        drop(self.tx);
        loop {
            tokio::select! {
                _ = self.closed.cancelled() => break,
                _ = self.cx.close.cancelled() => break,
                more = self.running.next() => if more.is_none() { break },
            }
        }
        // What is left (streams cut by the close) ends here; its responses were written or
        // are moot.
        drop(self.running);
        self.closed.cancel();
    }
}

/// Forwards an event stream's lines until it ends, the client goes or the daemon closes.
async fn stream_events(
    mut events: mpsc::Receiver<String>,
    tx: &mpsc::Sender<String>,
    stop: &[CancellationToken; 2],
) {
    loop {
        tokio::select! {
            _ = stop[0].cancelled() => return,
            _ = stop[1].cancelled() => return,
            ev = events.recv() => match ev {
                Some(line) => if tx.send(line).await.is_err() { return },
                None => return,
            },
        }
    }
}

/// Compares secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Vec<Result<Vec<u8>, usize>> {
        let mut codec = LineCodec::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        // Feed in small chunks to exercise partial reads.
        for chunk in input.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Ok(Some(l)) = codec.decode(&mut buf) {
                out.push(match l {
                    Line::Ok(b) => Ok(b.to_vec()),
                    Line::TooLong(n) => Err(n),
                });
            }
        }
        out
    }

    #[test]
    fn splits_lines_and_skips_long_ones() {
        let mut input = b"a\r\nbb\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        input.extend_from_slice(b"\nc\n");
        let got = decode_all(&input);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], Ok(b"a".to_vec()));
        assert_eq!(got[1], Ok(b"bb".to_vec()));
        assert_eq!(got[2], Err(MAX_LINE + 10));
        assert_eq!(got[3], Ok(b"c".to_vec()));
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
