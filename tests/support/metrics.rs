//! The daemon's HTTP side for tests: one GET on loopback, the `/metrics` text, and sample
//! values read from it by name and label fragments.
//!
//! It never caches a scrape: every call is a new request, so a test sees the value of now.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 GET on loopback (the server closes after answering); (status line, body).
pub async fn http_get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect metrics");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

/// The `/metrics` response (head and body) on `port`.
pub async fn scrape(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("metrics connect");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut body = String::new();
    s.read_to_string(&mut body).await.expect("read");
    body
}

/// The sample lines of metric `name` (not of a longer name it prefixes) whose label set contains
/// every fragment of `labels`.
fn samples<'a>(
    text: &'a str,
    name: &'a str,
    labels: &'a [&str],
) -> impl Iterator<Item = &'a str> + 'a {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(move |l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter(move |l| labels.iter().all(|f| l.contains(f)))
}

fn value(line: &str) -> Option<f64> {
    line.rsplit(' ').next()?.parse().ok()
}

/// The sum of the matching samples (0 when none match).
pub fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    samples(text, name, labels).filter_map(value).sum()
}

/// The value of the first matching sample.
pub fn first(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    samples(text, name, labels).next().and_then(value)
}
