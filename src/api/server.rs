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
    let token = settings.token.map(Arc::new);
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
                let handler = handler.clone();
                let token = token.clone();
                let close = close.clone();
                let write_timeout = settings.write_timeout;
                tracker.spawn(async move {
                    let _permit = permit;
                    let (r, w) = stream;
                    metrics::gauge!(crate::metrics::API_CONNECTIONS).increment(1.0);
                    connection(r, w, peer, handler, token, close, write_timeout).await;
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

async fn connection<H: Handler>(
    reader: BoxRead,
    mut writer: BoxWrite,
    peer: Peer,
    handler: Arc<H>,
    token: Option<Arc<Secret>>,
    close: CancellationToken,
    write_timeout: Duration,
) {
    let (tx, mut rx) = mpsc::channel::<String>(PIPELINE);
    let mut authenticated = token.is_none();
    let closed = CancellationToken::new();

    // Writer: sends response lines; disconnects a client that does not read.
    let writer_closed = closed.clone();
    let writer_peer = peer.addr.clone();
    let writer_task = tokio::spawn(async move {
        // Every response ready at this moment goes out in one write: under pipelined load a
        // write per line was a third of the daemon's time in `send(2)`.
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
                        peer = %writer_peer,
                        timeout_ms = write_timeout.as_millis() as u64,
                        "client disconnected: it left a response unread for listen.write_timeout"
                    );
                    break;
                }
            }
        }
        writer_closed.cancel();
        let _ = writer.shutdown().await;
    });

    let mut lines = FramedRead::with_capacity(reader, LineCodec::default(), 8 * 1024);
    let peer = Arc::new(peer);
    // Requests in progress, awaited by this task itself (a task per request cost more than
    // most requests): at most PIPELINE, so a client that pipelines more waits for answers.
    // An event stream (subscribe) keeps its slot while it runs.
    // Each request's future returns the bytes it was charged (its line's length); their sum is
    // `charged`, kept under PIPELINE_BYTES.
    let mut running: FuturesUnordered<Pin<Box<dyn Future<Output = usize> + Send>>> =
        FuturesUnordered::new();
    let mut charged: usize = 0;
    // With a token, a connection that has not authenticated by then is closed, so that
    // unauthenticated clients cannot hold the `max_connections` slots.
    let auth_deadline = tokio::time::Instant::now() + AUTH_TIMEOUT;
    loop {
        let next = tokio::select! {
            _ = closed.cancelled() => break,
            _ = close.cancelled() => break,
            _ = tokio::time::sleep_until(auth_deadline), if !authenticated => {
                handler.refused(ErrorCode::Unauthorized);
                tracing::info!(peer = %peer.addr, "client disconnected: no auth within {AUTH_TIMEOUT:?}");
                let e = ApiError::new(
                    ErrorCode::Unauthorized,
                    format!("not authenticated within {} s; closing", AUTH_TIMEOUT.as_secs()),
                );
                let _ = tx.send(Reply::error(None, &e)).await;
                break;
            }
            Some(done) = running.next(), if !running.is_empty() => {
                charged -= done;
                continue;
            }
            n = lines.next(), if running.len() < PIPELINE && charged < PIPELINE_BYTES => n,
        };
        let line = match next {
            None | Some(Err(_)) => break,
            Some(Ok(Line::TooLong(n))) => {
                let e = ApiError::new(
                    ErrorCode::BadRequest,
                    format!("line is {n} bytes; at most {MAX_LINE} are accepted"),
                );
                handler.refused(e.code);
                if tx.send(Reply::error(None, &e)).await.is_err() {
                    break;
                }
                continue;
            }
            Some(Ok(Line::Ok(l))) => l,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue; // blank lines are keep-alives for line tools
        }
        let parsed = parse_line(&line);
        let request = match parsed.request {
            Err(e) => {
                handler.refused(e.code);
                if tx
                    .send(Reply::error(parsed.reference.as_deref(), &e))
                    .await
                    .is_err()
                {
                    break;
                }
                continue;
            }
            Ok(r) => r,
        };
        if let Request::Auth { token: given } = &request {
            let reply = match &token {
                Some(t) if constant_time_eq(t.expose().as_bytes(), given.as_bytes()) => {
                    authenticated = true;
                    Reply::ok(parsed.reference.as_deref(), &serde_json::json!({}))
                }
                Some(_) => {
                    handler.refused(ErrorCode::Unauthorized);
                    Reply::error(
                        parsed.reference.as_deref(),
                        &ApiError::new(ErrorCode::Unauthorized, "wrong token"),
                    )
                }
                None => Reply::ok(parsed.reference.as_deref(), &serde_json::json!({})),
            };
            if tx.send(reply).await.is_err() {
                break;
            }
            continue;
        }
        if !authenticated {
            handler.refused(ErrorCode::Unauthorized);
            let e = ApiError::new(
                ErrorCode::Unauthorized,
                "send {\"op\":\"auth\",\"token\":\"…\"} first",
            );
            if tx
                .send(Reply::error(parsed.reference.as_deref(), &e))
                .await
                .is_err()
            {
                break;
            }
            continue;
        }
        let handler = handler.clone();
        let tx = tx.clone();
        let peer = peer.clone();
        let closed = closed.clone();
        let close = close.clone();
        let charge = line.len();
        charged += charge;
        running.push(Box::pin(async move {
            match handler.handle(request, parsed.reference, &peer).await {
                Outcome::Line(l) => {
                    let _ = tx.send(l).await;
                }
                Outcome::Stream(first, mut events) => {
                    if tx.send(first).await.is_err() {
                        return charge;
                    }
                    loop {
                        tokio::select! {
                            _ = closed.cancelled() => break,
                            _ = close.cancelled() => break,
                            ev = events.recv() => match ev {
                                Some(line) => if tx.send(line).await.is_err() { break },
                                None => break,
                            },
                        }
                    }
                }
            }
            charge
        }));
    }
    // Let in-progress requests finish and their responses be written, then close.
    drop(tx);
    loop {
        tokio::select! {
            _ = closed.cancelled() => break,
            _ = close.cancelled() => break,
            more = running.next() => if more.is_none() { break },
        }
    }
    // What is left (streams cut by the close) ends here; its responses were written or are
    // moot.
    drop(running);
    closed.cancel();
    let _ = writer_task.await;
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
