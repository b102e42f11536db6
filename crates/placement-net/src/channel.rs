//! Channels: many request/answer calls multiplexed over one persistent connection, for the
//! peer port.
//!
//! # Why
//! Members call each other all the time: a heartbeat to every follower every 100 ms, an
//! AppendEntries per batch of writes, a forwarded batch of writes, a read index. Over
//! HTTP/1.1 each call is a request on a pooled connection: a pool checkout, a head written
//! and parsed on both sides, one call at a time per connection, its own `write` and `read`.
//! A channel carries the same calls as small binary frames on one connection per pair of
//! members: calls in flight at once share it, and frames queued together leave in one write.
//!
//! # What a call is
//! Exactly what it is over HTTP: a `POST` of a body to a path, answered with a status and a
//! body. The serving side hands each frame to the port's own [`Router`] as a `POST` request
//! carrying the connection's [`ConnInfo`], so every route, guard, bound and shedding layer
//! applies to a call whichever way it came. A channel only replaces the framing.
//!
//! # The wire
//! The client opens a connection to the port (TLS first where the port has it: the same
//! handshake and client certificate as HTTP) and sends [`PREAMBLE`]; the port answers with
//! the same bytes. A port that does not accept channels (an older version, or the API port)
//! sees a byte no HTTP request begins with and answers with an HTTP error, so the client
//! knows to use HTTP ([`ChannelError::Unsupported`]). Then, all integers big-endian:
//!
//! - a call: `u32 n`, then `n` bytes: `u64 id`, `u8 path length`, the path, the body;
//! - an answer: `u32 n`, then `n` bytes: `u64 id` (the call's), `u16 status`, the body.
//!
//! Answers come in any order. Ids are the client's; the server echoes them.
//!
//! # Bounds on the serving side
//! - A frame is at most [`ChannelLimits::max_frame`] bytes; its bytes are read as they
//!   arrive (never allocated up front from the length), and all of them must arrive within
//!   [`ChannelLimits::frame_timeout`] of its first byte.
//! - At most [`ChannelLimits::max_in_flight`] calls of one channel are served at once; the
//!   next frame is not read before one finishes, so a flooding client is held back by TCP.
//! - A channel with no call for [`ChannelLimits::idle_timeout`] is closed.
//! - A channel is a connection: it counts against the port's connection cap.
//! - When the port shuts down, a channel reads no further call, finishes those in flight
//!   and closes.
//!
//! Left out: cancelling a call the client gave up on (the serving side's own deadline
//! layer bounds it), and snapshots, whose bodies stream over HTTP.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
    BufWriter, ReadBuf,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tower::ServiceExt;

use crate::identity::ConnInfo;

/// What a client sends first on a channel, and what the port answers: a zero byte (which
/// no HTTP request begins with), a name and a version.
pub const PREAMBLE: &[u8] = b"\0placementd-channel/1\n";

/// Bytes of a call frame before its path: id (8) and path length (1).
const CALL_HEAD: usize = 9;
/// Bytes of an answer frame before its body: id (8) and status (2).
const ANSWER_HEAD: usize = 10;
/// Buffered bytes per direction of a channel.
const BUFFER: usize = 64 << 10;

/// How long a channel may go without a call before its port closes it.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the bytes of one frame may take to arrive after its first.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(60);
/// Calls of one channel served at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// The bounds of the channels a port accepts (the module doc).
#[derive(Debug, Clone)]
pub struct ChannelLimits {
    /// Largest frame, its length prefix excluded: bounds a call's body and an answer's.
    pub max_frame: usize,
    pub idle_timeout: Duration,
    pub frame_timeout: Duration,
    pub max_in_flight: usize,
}

impl ChannelLimits {
    /// The defaults, with frames up to `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        ChannelLimits {
            max_frame,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            frame_timeout: DEFAULT_FRAME_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// Why a call over a channel produced no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChannelError {
    /// No connection (or no TLS session) could be made.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The port answered the preamble with something else: it does not take channels.
    #[error("the port does not accept channels")]
    Unsupported,
    /// The channel broke, or the call could not be sent or answered.
    #[error("{0}")]
    Call(String),
}

/// An answer: the status and body the port's router gave the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

// ---- The client ----------------------------------------------------------------------------

type Waiting = Mutex<HashMap<u64, oneshot::Sender<Answer>>>;

/// What the client's tasks share with its handle.
#[derive(Debug, Default)]
struct Shared {
    waiting: Waiting,
    next_id: AtomicU64,
    closed: AtomicBool,
    why: Mutex<Option<String>>,
}

impl Shared {
    /// Marks the channel closed for `why` and fails every call waiting on it.
    fn close(&self, why: String) {
        {
            let mut slot = self.why.lock().unwrap_or_else(|e| e.into_inner());
            slot.get_or_insert(why);
        }
        self.closed.store(true, Ordering::Release);
        let waiting = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|e| e.into_inner()));
        drop(waiting);
    }

    fn why(&self) -> String {
        self.why
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "channel closed".into())
    }
}

/// A frame on its way out: its head and its body, written one after the other so that a
/// large body is not copied into the head's buffer.
type Outgoing = (Vec<u8>, Vec<u8>);

/// The client end of a channel. Calls may be made from many tasks at once; dropping the
/// handle closes the connection.
#[derive(Debug)]
pub struct Channel {
    outgoing: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<Shared>,
    max_frame: usize,
    /// Dropped with the handle: stops the reading task.
    _dropped: oneshot::Sender<()>,
}

impl Channel {
    /// Connects to `addr` (TLS when `tls` gives a client configuration and the name the
    /// server's certificate must show), and opens a channel on the connection. The TCP
    /// connection, the TLS handshake and the preamble exchange each get `connect_timeout`.
    pub async fn dial(
        addr: &str,
        tls: Option<(Arc<rustls::ClientConfig>, String)>,
        connect_timeout: Duration,
        max_frame: usize,
    ) -> Result<Channel, ChannelError> {
        let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(ChannelError::Connect(format!("{addr}: {e}"))),
            Err(_) => return Err(ChannelError::Connect(format!("{addr}: timed out"))),
        };
        let _ = tcp.set_nodelay(true);
        let Some((config, name)) = tls else {
            return Channel::open(tcp, connect_timeout, max_frame).await;
        };
        let name = rustls_pki_types::ServerName::try_from(name)
            .map_err(|e| ChannelError::Connect(format!("server name: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let stream = match tokio::time::timeout(connect_timeout, connector.connect(name, tcp)).await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(ChannelError::Connect(format!("{addr}: TLS: {e}"))),
            Err(_) => return Err(ChannelError::Connect(format!("{addr}: TLS timed out"))),
        };
        Channel::open(stream, connect_timeout, max_frame).await
    }

    /// Opens a channel on a connection already made: sends the preamble and waits (at most
    /// `timeout`) for the port to answer with it.
    pub async fn open<IO>(
        io: IO,
        timeout: Duration,
        max_frame: usize,
    ) -> Result<Channel, ChannelError>
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, writer) = tokio::io::split(io);
        let mut reader = BufReader::with_capacity(BUFFER, reader);
        let mut writer = BufWriter::with_capacity(BUFFER, writer);
        let greet = async {
            writer.write_all(PREAMBLE).await?;
            writer.flush().await?;
            let mut answer = vec![0u8; PREAMBLE.len()];
            let mut got = 0;
            while got < answer.len() {
                let n = reader.read(&mut answer[got..]).await?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            io::Result::Ok(answer[..got] == *PREAMBLE)
        };
        match tokio::time::timeout(timeout, greet).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Err(ChannelError::Unsupported),
            Ok(Err(e)) => return Err(ChannelError::Connect(format!("preamble: {e}"))),
            Err(_) => return Err(ChannelError::Connect("no preamble in time".into())),
        }

        let shared = Arc::new(Shared::default());
        let (outgoing, queue) = mpsc::unbounded_channel();
        let (dropped, on_drop) = oneshot::channel();
        tokio::spawn(client_writes(writer, queue, shared.clone()));
        tokio::spawn(client_reads(reader, shared.clone(), max_frame, on_drop));
        Ok(Channel {
            outgoing,
            shared,
            max_frame,
            _dropped: dropped,
        })
    }

    /// Whether the channel broke (a call on it would fail at once).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// POSTs `body` to `path` and waits at most `timeout` for the answer.
    pub async fn call(
        &self,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Answer, ChannelError> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let head = call_head(id, path, body.len(), self.max_frame)?;
        let (reply, answer) = oneshot::channel();
        self.shared
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, reply);
        // A close that took the map before this call was in it would never fail it: check
        // after the insert.
        let forget = || {
            self.shared
                .waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        };
        if self.is_closed() {
            forget();
            return Err(ChannelError::Call(self.shared.why()));
        }
        if self.outgoing.send((head, body)).is_err() {
            forget();
            return Err(ChannelError::Call(self.shared.why()));
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(ChannelError::Call(self.shared.why())),
            Err(_) => {
                forget();
                Err(ChannelError::Call(format!("no answer within {timeout:?}")))
            }
        }
    }
}

/// The length prefix and head of call `id`'s frame, checked against `max_frame`.
fn call_head(
    id: u64,
    path: &str,
    body_len: usize,
    max_frame: usize,
) -> Result<Vec<u8>, ChannelError> {
    let path_len = u8::try_from(path.len())
        .map_err(|_| ChannelError::Call(format!("path too long: {} bytes", path.len())))?;
    let n = CALL_HEAD + path.len() + body_len;
    if n > max_frame {
        return Err(ChannelError::Call(format!(
            "call of {n} bytes, beyond the frame limit of {max_frame}"
        )));
    }
    let n = u32::try_from(n).map_err(|_| ChannelError::Call("call too large".into()))?;
    let mut head = Vec::with_capacity(4 + CALL_HEAD + path.len());
    head.extend_from_slice(&n.to_be_bytes());
    head.extend_from_slice(&id.to_be_bytes());
    head.push(path_len);
    head.extend_from_slice(path.as_bytes());
    Ok(head)
}

/// Writes queued frames, many per `write` when they queue together.
async fn write_queued<W: AsyncWrite + Unpin>(
    writer: &mut BufWriter<W>,
    queue: &mut mpsc::UnboundedReceiver<Outgoing>,
) -> io::Result<()> {
    while let Some((head, body)) = queue.recv().await {
        writer.write_all(&head).await?;
        writer.write_all(&body).await?;
        while let Ok((head, body)) = queue.try_recv() {
            writer.write_all(&head).await?;
            writer.write_all(&body).await?;
        }
        writer.flush().await?;
    }
    writer.shutdown().await
}

async fn client_writes<W: AsyncWrite + Unpin>(
    mut writer: BufWriter<W>,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
) {
    if let Err(e) = write_queued(&mut writer, &mut queue).await {
        shared.close(format!("channel write: {e}"));
    }
}

async fn client_reads<R: AsyncRead + Unpin>(
    mut reader: BufReader<R>,
    shared: Arc<Shared>,
    max_frame: usize,
    mut dropped: oneshot::Receiver<()>,
) {
    let why = loop {
        let frame = tokio::select! {
            _ = &mut dropped => break "channel dropped".to_string(),
            frame = read_frame(&mut reader, max_frame, ANSWER_HEAD, Some(DEFAULT_FRAME_TIMEOUT)) => frame,
        };
        match frame {
            Ok(Some(frame)) => {
                let id = u64::from_be_bytes(frame[..8].try_into().unwrap_or_default());
                let status = u16::from_be_bytes([frame[8], frame[9]]);
                let waiting = shared
                    .waiting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                // No one waiting: the call timed out; its answer is dropped.
                if let Some(reply) = waiting {
                    let mut body = frame;
                    body.drain(..ANSWER_HEAD);
                    let _ = reply.send(Answer { status, body });
                }
            }
            Ok(None) => break "channel closed by the peer".to_string(),
            Err(e) => break format!("channel read: {e}"),
        }
    };
    shared.close(why);
}

/// Reads one frame (without its length prefix): `None` at a clean end of the stream before
/// a frame begins. The frame must be at least `min` bytes and at most `max`; with a
/// `timeout`, all of it must arrive within that time of its first byte. Its bytes are read
/// as they arrive, so a length alone allocates nothing.
async fn read_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    min: usize,
    timeout: Option<Duration>,
) -> io::Result<Option<Vec<u8>>> {
    if reader.fill_buf().await?.is_empty() {
        return Ok(None);
    }
    let rest = async {
        let n = reader.read_u32().await? as usize;
        if n < min || n > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame of {n} bytes (at least {min}, at most {max})"),
            ));
        }
        let mut frame = Vec::with_capacity(n.min(BUFFER));
        (&mut *reader)
            .take(n as u64)
            .read_to_end(&mut frame)
            .await?;
        if frame.len() != n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(frame)
    };
    match timeout {
        None => rest.await.map(Some),
        Some(t) => match tokio::time::timeout(t, rest).await {
            Ok(frame) => frame.map(Some),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("a frame took longer than {t:?} to arrive"),
            )),
        },
    }
}

// ---- The serving side ----------------------------------------------------------------------

/// Serves one channel on a connection whose preamble was read (`serve.rs`): answers it,
/// then reads calls and hands each to `app` until the client closes, a bound is broken,
/// or `closing` turns true.
pub(crate) async fn serve_channel<IO>(
    io: IO,
    info: ConnInfo,
    app: Router,
    limits: &ChannelLimits,
    mut closing: watch::Receiver<bool>,
    port: &'static str,
) where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(io);
    let mut reader = BufReader::with_capacity(BUFFER, reader);
    let (answers, queue) = mpsc::unbounded_channel::<Outgoing>();
    let _ = answers.send((PREAMBLE.to_vec(), Vec::new()));
    let writes = tokio::spawn(async move {
        let mut writer = BufWriter::with_capacity(BUFFER, writer);
        let mut queue = queue;
        write_queued(&mut writer, &mut queue).await
    });
    let slots = Arc::new(Semaphore::new(limits.max_in_flight));
    let remote = info.remote;
    let why = loop {
        let slot = tokio::select! {
            _ = closing.wait_for(|c| *c) => break "the port is shutting down".to_string(),
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break "closed".to_string(),
            },
        };
        // Wait for the next call; an idle channel (nothing in flight) is closed.
        let arrived = tokio::select! {
            _ = closing.wait_for(|c| *c) => break "the port is shutting down".to_string(),
            arrived = tokio::time::timeout(limits.idle_timeout, reader.fill_buf()) => arrived,
        };
        match arrived {
            Err(_) if slots.available_permits() + 1 >= limits.max_in_flight => {
                break "idle".to_string()
            }
            Err(_) => continue,
            Ok(Err(e)) => break format!("read: {e}"),
            Ok(Ok(_)) => {}
        }
        let frame = match read_frame(
            &mut reader,
            limits.max_frame,
            CALL_HEAD,
            Some(limits.frame_timeout),
        )
        .await
        {
            Ok(Some(frame)) => frame,
            Ok(None) => break "closed by the client".to_string(),
            Err(e) => break format!("read: {e}"),
        };
        let (id, path, body) = match parse_call(frame) {
            Ok(call) => call,
            Err(e) => break e,
        };
        let (app, info, answers, max_frame) =
            (app.clone(), info.clone(), answers.clone(), limits.max_frame);
        tokio::spawn(async move {
            let (status, body) = dispatch(app, info, &path, body, max_frame).await;
            let mut head = Vec::with_capacity(4 + ANSWER_HEAD);
            let n = u32::try_from(ANSWER_HEAD + body.len()).unwrap_or(u32::MAX);
            head.extend_from_slice(&n.to_be_bytes());
            head.extend_from_slice(&id.to_be_bytes());
            head.extend_from_slice(&status.to_be_bytes());
            let _ = answers.send((head, body));
            drop(slot);
        });
    };
    tracing::debug!(port, %remote, %why, "channel closed");
    // The calls in flight hold the other senders: the writer ends after their answers.
    drop(answers);
    match writes.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(port, %remote, error = %e, "channel write failed"),
        Err(e) => tracing::debug!(port, %remote, error = %e, "channel writer failed"),
    }
}

/// A call frame's id, path and body.
fn parse_call(mut frame: Vec<u8>) -> Result<(u64, String, Vec<u8>), String> {
    let id = u64::from_be_bytes(frame[..8].try_into().unwrap_or_default());
    let path_len = usize::from(frame[8]);
    let path_end = CALL_HEAD + path_len;
    if frame.len() < path_end {
        return Err("a call frame shorter than its path".into());
    }
    let path = std::str::from_utf8(&frame[CALL_HEAD..path_end])
        .ok()
        .filter(|p| p.starts_with('/'))
        .ok_or("a call path that is not an absolute path")?
        .to_string();
    frame.drain(..path_end);
    Ok((id, path, frame))
}

/// Hands one call to `app` as the `POST` it stands for; the answer's status and body (a
/// body beyond `max_frame` becomes a 500).
async fn dispatch(
    app: Router,
    info: ConnInfo,
    path: &str,
    body: Vec<u8>,
    max_frame: usize,
) -> (u16, Vec<u8>) {
    let request = http::Request::post(path).body(axum::body::Body::from(body));
    let mut request = match request {
        Ok(request) => request,
        Err(e) => return (400, format!("bad call: {e}").into_bytes()),
    };
    request.extensions_mut().insert(info);
    let response = match app.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let limit = max_frame.saturating_sub(ANSWER_HEAD);
    match axum::body::to_bytes(response.into_body(), limit).await {
        Ok(body) => (status, body.to_vec()),
        Err(e) => (500, format!("answer not sent: {e}").into_bytes()),
    }
}

// ---- Telling a channel from HTTP -----------------------------------------------------------

/// A connection whose first bytes were read to see what it speaks, then handed back: reads
/// return them first.
#[derive(Debug)]
pub(crate) struct Prefixed<IO> {
    prefix: Vec<u8>,
    at: usize,
    io: IO,
}

impl<IO> Prefixed<IO> {
    pub(crate) fn new(prefix: Vec<u8>, io: IO) -> Self {
        Prefixed { prefix, at: 0, io }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Prefixed<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.prefix.len() {
            let n = (this.prefix.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Prefixed<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// What a connection's first bytes say it speaks.
pub(crate) enum Speaks {
    /// A channel: the preamble was read whole; the bytes after it come first.
    Channel(Vec<u8>),
    /// Anything else (HTTP): every byte read so far, to be read again.
    Other(Vec<u8>),
    /// Closed, or a broken preamble: nothing to serve.
    Nothing,
}

/// Reads a connection's first bytes (within `timeout`) to see whether it opens a channel.
/// Only a first byte of zero is read on for the rest of the preamble.
pub(crate) async fn sniff<IO: AsyncRead + Unpin>(io: &mut IO, timeout: Duration) -> Speaks {
    let read = async {
        let mut seen = vec![0u8; 4096];
        let mut got = io.read(&mut seen).await?;
        if got == 0 {
            return io::Result::Ok(Speaks::Nothing);
        }
        if seen[0] != 0 {
            seen.truncate(got);
            return Ok(Speaks::Other(seen));
        }
        while got < PREAMBLE.len() && seen[..got] == PREAMBLE[..got] {
            let n = io.read(&mut seen[got..]).await?;
            if n == 0 {
                return Ok(Speaks::Nothing);
            }
            got += n;
        }
        seen.truncate(got);
        if seen.len() >= PREAMBLE.len() && seen[..PREAMBLE.len()] == *PREAMBLE {
            seen.drain(..PREAMBLE.len());
            Ok(Speaks::Channel(seen))
        } else {
            Ok(Speaks::Nothing)
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(speaks)) => speaks,
        _ => Speaks::Nothing,
    }
}

#[cfg(test)]
mod tests;
