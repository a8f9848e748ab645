//! The metrics endpoint: `GET /metrics` (Prometheus text format) and `GET /healthz`.
//!
//! A deliberately tiny HTTP/1.1 responder: two paths, GET only, one request per connection,
//! bounded request size and time. It must never block the daemon or grow with a slow client.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Largest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// A client gets this long to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves until `stop` is cancelled. `render` produces the metrics text; `healthy` says whether
/// `/healthz` answers 200 (else 503), with a one-line reason.
pub async fn serve<R, H, F>(listener: TcpListener, render: R, healthy: H, stop: CancellationToken)
where
    R: Fn() -> String + Send + Sync + 'static,
    H: Fn() -> F + Send + Sync + 'static,
    F: Future<Output = Result<String, String>> + Send,
{
    let render = Arc::new(render);
    let healthy = Arc::new(healthy);
    loop {
        let (mut stream, _) = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let render = render.clone();
        let healthy = healthy.clone();
        tokio::spawn(async move {
            let Some(line) = read_request_line(&mut stream).await else {
                return;
            };
            let mut words = line.split_whitespace();
            let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let (status, ctype, body) = match (method, path.split('?').next().unwrap_or("")) {
                ("GET", "/metrics") => (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    render(),
                ),
                ("GET", "/healthz") => match healthy().await {
                    Ok(msg) => ("200 OK", "text/plain; charset=utf-8", msg + "\n"),
                    Err(msg) => (
                        "503 Service Unavailable",
                        "text/plain; charset=utf-8",
                        msg + "\n",
                    ),
                },
                ("GET", _) => (
                    "404 Not Found",
                    "text/plain; charset=utf-8",
                    "try /metrics or /healthz\n".to_owned(),
                ),
                _ => (
                    "405 Method Not Allowed",
                    "text/plain; charset=utf-8",
                    "GET only\n".to_owned(),
                ),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(READ_TIMEOUT, stream.write_all(response.as_bytes())).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// Reads the request head (up to [`MAX_REQUEST`] bytes, within [`READ_TIMEOUT`]) and returns its
/// first line; `None` when the client closed, failed or was too slow.
async fn read_request_line(stream: &mut TcpStream) -> Option<String> {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    let head = tokio::time::timeout(READ_TIMEOUT, async {
        loop {
            let n = stream.read(&mut buf[len..]).await.ok()?;
            if n == 0 {
                return None;
            }
            len += n;
            if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") || len == buf.len() {
                return Some(());
            }
        }
    })
    .await;
    if !matches!(head, Ok(Some(()))) {
        return None;
    }
    let line = buf[..len].split(|b| *b == b'\n').next().unwrap_or(&[]);
    Some(String::from_utf8_lossy(line).into_owned())
}
