//! A client for the submit protocol: what `smppd send`, `smppd status` and the load tool use.
//!
//! Owns: connecting (TCP or Unix socket, with the token when one is configured), sending
//! requests with fresh `ref`s, and matching responses back to them (responses may arrive out of
//! order; event lines are kept apart). Must never hold an unbounded number of requests: callers
//! pipeline at most what they choose and wait.

use std::collections::HashMap;
use std::io;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::config::ListenAddr;

/// Errors talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to smppd at {addr}")]
    Connect { addr: String, source: io::Error },
    #[error("connection to smppd lost: {0}")]
    Io(#[from] io::Error),
    #[error("smppd closed the connection")]
    Closed,
    #[error("smppd sent a line that is not JSON: {0}")]
    Garbled(String),
    #[error("authentication failed: {0}")]
    Auth(String),
}

type Reader = BufReader<Box<dyn AsyncRead + Send + Unpin>>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// One connection to the daemon.
pub struct Client {
    reader: Reader,
    out: ClientWriter,
    /// Responses read while waiting for another `ref`.
    early: HashMap<u64, Value>,
    /// Event lines read while waiting for a response.
    events: Vec<Value>,
}

impl Client {
    /// Connects, and authenticates when `token` is given.
    pub async fn connect(addr: &ListenAddr, token: Option<&str>) -> Result<Client, ClientError> {
        let (r, w): (Box<dyn AsyncRead + Send + Unpin>, Writer) = match addr {
            ListenAddr::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a).await.map_err(|source| {
                    ClientError::Connect {
                        addr: a.to_string(),
                        source,
                    }
                })?;
                let _ = s.set_nodelay(true);
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            ListenAddr::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p).await.map_err(|source| {
                    ClientError::Connect {
                        addr: format!("unix:{}", p.display()),
                        source,
                    }
                })?;
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
        };
        let mut c = Client {
            reader: BufReader::new(r),
            // Buffered: a pipelining caller writes many lines per system call.
            out: ClientWriter {
                writer: Box::new(tokio::io::BufWriter::new(w)),
                next_ref: 0,
            },
            early: HashMap::new(),
            events: Vec::new(),
        };
        if let Some(t) = token {
            let v = c.call(json!({"op":"auth","token":t})).await?;
            if v["ok"] != true {
                return Err(ClientError::Auth(v["error"]["message"].to_string()));
            }
        }
        Ok(c)
    }

    /// Queues a request without waiting (written by `flush`, `response` or a full buffer);
    /// returns its `ref`.
    pub async fn send(&mut self, request: Value) -> Result<u64, ClientError> {
        self.out.send(request).await
    }

    /// Like [`Client::send`] for a typed request: see [`ClientWriter::send_typed`].
    pub async fn send_typed<T: serde::Serialize>(
        &mut self,
        fields: &T,
    ) -> Result<u64, ClientError> {
        self.out.send_typed(fields).await
    }

    /// Splits the connection into halves that can be driven from separate tasks: one sends
    /// (paced, say) while the other reads responses as they come. Responses and events read
    /// before the split and not yet taken are dropped, so split before pipelining.
    pub fn into_split(self) -> (ClientReader, ClientWriter) {
        (
            ClientReader {
                reader: self.reader,
            },
            self.out,
        )
    }

    /// Reads the next line as it came (without parsing it), for callers that parse it into
    /// their own types; `Closed` at the end of the stream.
    pub async fn next_raw(&mut self, line: &mut String) -> Result<(), ClientError> {
        line.clear();
        if self.reader.read_line(line).await? == 0 {
            return Err(ClientError::Closed);
        }
        Ok(())
    }

    /// Flushes what `send` wrote.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.out.flush().await
    }

    /// Reads the next line: a response (with its numeric `ref`) or an event (`ref` None).
    pub async fn next_line(&mut self) -> Result<(Option<u64>, Value), ClientError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            return Err(ClientError::Closed);
        }
        let v: Value = serde_json::from_str(&line)
            .map_err(|_| ClientError::Garbled(line.trim().to_owned()))?;
        if v.get("event").is_some() {
            return Ok((None, v));
        }
        Ok((v["ref"].as_u64(), v))
    }

    /// Waits for the response to `r`.
    pub async fn response(&mut self, r: u64) -> Result<Value, ClientError> {
        self.flush().await?;
        if let Some(v) = self.early.remove(&r) {
            return Ok(v);
        }
        loop {
            match self.next_line().await? {
                (Some(got), v) if got == r => return Ok(v),
                (Some(got), v) => {
                    self.early.insert(got, v);
                }
                (None, ev) => self.events.push(ev),
            }
        }
    }

    /// Sends a request and waits for its response.
    pub async fn call(&mut self, request: Value) -> Result<Value, ClientError> {
        let r = self.send(request).await?;
        self.response(r).await
    }

    /// Event lines received while waiting for responses, oldest first.
    pub fn take_events(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.events)
    }
}

/// The sending half of a [`Client`] (from [`Client::into_split`]).
pub struct ClientWriter {
    writer: Writer,
    next_ref: u64,
}

impl ClientWriter {
    /// Queues a request without waiting (written by `flush`, `response` or a full buffer);
    /// returns its `ref`.
    pub async fn send(&mut self, mut request: Value) -> Result<u64, ClientError> {
        self.next_ref += 1;
        let r = self.next_ref;
        request["ref"] = json!(r);
        let mut line = request.to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).await?;
        Ok(r)
    }

    /// Like [`ClientWriter::send`] for a typed request: `fields` serializes to a JSON object without
    /// a `ref` (which is added). For callers that send many requests (the load tool): no
    /// `Value` tree per request.
    pub async fn send_typed<T: serde::Serialize>(
        &mut self,
        fields: &T,
    ) -> Result<u64, ClientError> {
        self.next_ref += 1;
        let r = self.next_ref;
        let mut line = serde_json::to_vec(fields).map_err(|e| {
            ClientError::Io(io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
        })?;
        // `{…}` → `{"ref":N,…}`; an empty object gets no trailing comma.
        if line.first() != Some(&b'{') {
            return Err(ClientError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a request must be a JSON object",
            )));
        }
        let head = if line.len() > 2 {
            format!("{{\"ref\":{r},")
        } else {
            format!("{{\"ref\":{r}")
        };
        line.splice(0..1, head.bytes());
        line.push(b'\n');
        self.writer.write_all(&line).await?;
        Ok(r)
    }

    /// Flushes what `send` wrote.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.writer.flush().await?;
        Ok(())
    }
}

/// The receiving half of a [`Client`] (from [`Client::into_split`]).
pub struct ClientReader {
    reader: Reader,
}

impl ClientReader {
    /// Reads the next line as it came; `Closed` at the end of the stream.
    pub async fn next_raw(&mut self, line: &mut String) -> Result<(), ClientError> {
        line.clear();
        if self.reader.read_line(line).await? == 0 {
            return Err(ClientError::Closed);
        }
        Ok(())
    }
}
