//! A reader between the socket and hyper that renames a `Content-Length` hyper would refuse,
//! so the request reaches the API and is answered in Placement's words.
//!
//! hyper's HTTP/1 parser refuses a request whose `Content-Length` is not a plain decimal
//! number (`content-length: hi mom`, `-1`, `+5`, two that differ) while it parses the head,
//! and writes a bare `400 Bad Request` before any service sees the request. Placement
//! answers such a request itself (`PlacementHandler.__call__`: 400 "content-length header
//! must be an integer", in its JSON error document), and its conformance tests check that.
//! [`HeadGuard`] reads each request head before hyper does and, when hyper would refuse its
//! `Content-Length`, renames every `Content-Length` header of that head to
//! [`RENAMED_CONTENT_LENGTH`], a name of the same length, value untouched. hyper then sees
//! a request without a body; the API answers it (`placement-api`'s `context.rs` treats the
//! renamed header as a non-integer length), and [`crate::serve()`] adds `connection: close`
//! to the answer, because the bytes the client sent as a body would otherwise be read as
//! the next request.
//!
//! # Finding heads
//! The guard follows the connection's framing as hyper will, so it inspects request heads
//! and nothing else:
//!
//! - a head ends where [`httparse`], hyper's own parser with hyper's settings, says it does
//!   (hyper's limit of 100 headers included);
//! - after a head with a `Content-Length` hyper accepts, that many bytes are body and pass
//!   untouched, then the next head starts; without `Content-Length` or `Transfer-Encoding`
//!   the body is empty and the next head starts at once (hyper frames a request exactly so,
//!   and either reads a whole body or closes the connection, `Expect: 100-continue`
//!   included);
//! - it stops inspecting, and passes everything through for the rest of the connection,
//!   after a head with `Transfer-Encoding` (a chunked body, or one hyper refuses),
//!   `Upgrade` or method `CONNECT` (the bytes after it may not be HTTP), after a head whose
//!   length it renamed (the connection closes after its answer), and when a head cannot be
//!   parsed,
//!   is larger than the limit, or the client closes mid-head: hyper decides those as it
//!   would without the guard.
//!
//! Invariants: the only bytes ever changed are the 14 bytes of a `Content-Length` name in a
//! head parsed completely; a byte once decided (a whole head, body bytes, anything after
//! the guard stopped inspecting) is handed to the next read, never held back; at most one
//! head (its limit, hyper's read buffer size) and one read chunk are buffered. A head
//! still arriving is held back, but hyper's header timeout runs from when it starts waiting
//! for a head, not from its first byte, so a client trickling one is still closed in time.
//!
//! Left out: rewriting anything else hyper refuses in a head (a bad header name or request
//! line stays hyper's bare 400, as before); HTTP/2, which placementd does not serve.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The name a refused `Content-Length` header is given. It has the length of
/// `content-length` (14 bytes), so the rename moves no byte. A client may send this header
/// itself: it is then answered exactly as a refused length (400, connection closed), and
/// nothing else reads it.
pub const RENAMED_CONTENT_LENGTH: &str = "x-invalid-clen";
/// The length of `content-length`, and of the name it is renamed to.
const NAME_LEN: usize = 14;
const _: () =
    assert!(RENAMED_CONTENT_LENGTH.len() == NAME_LEN && "content-length".len() == NAME_LEN);

/// Bytes asked of the socket per read while a head is collected or a short body finishes.
const READ_CHUNK: usize = 8192;
/// hyper's limit on the headers of a request (`DEFAULT_MAX_HEADERS`); a head with more is
/// passed to hyper, which refuses it.
const MAX_HEADERS: usize = 100;
/// The largest body length hyper accepts (`u64::MAX - 2`: it keeps the two values above for
/// chunked and close-delimited bodies).
const MAX_BODY_LEN: u64 = u64::MAX - 2;

/// The IO of one connection, with request heads whose `Content-Length` hyper would refuse
/// renamed as the module doc describes. Writes pass straight through.
#[derive(Debug)]
pub struct HeadGuard<IO> {
    io: IO,
    /// A head longer than this is passed through uninspected.
    max_head: usize,
    /// Bytes read from `io` not yet handed on: `buf[..decided]` may be handed on (from
    /// `handed`), `buf[decided..]` is the beginning of a head not yet complete.
    buf: Vec<u8>,
    handed: usize,
    decided: usize,
    /// What the bytes after `buf[..decided]` are.
    next: Next,
    /// `io` reached its end.
    eof: bool,
}

/// What the bytes after those decided are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// A request head.
    Head,
    /// This many bytes of a body (never zero), then a head.
    Body(u64),
    /// Anything: the guard no longer inspects this connection.
    Through,
}

impl<IO> HeadGuard<IO> {
    /// Guards `io`, inspecting heads of at most `max_head` bytes (hyper's read buffer size).
    pub fn new(io: IO, max_head: usize) -> Self {
        HeadGuard {
            io,
            max_head,
            buf: Vec::new(),
            handed: 0,
            decided: 0,
            next: Next::Head,
            eof: false,
        }
    }

    /// Decides what it can of the buffered bytes not yet decided; false if nothing can be
    /// decided before more bytes arrive.
    fn decide(&mut self) -> bool {
        let undecided = self.buf.len() - self.decided;
        if undecided == 0 {
            return false;
        }
        match self.next {
            Next::Through => self.decided = self.buf.len(),
            Next::Body(left) => {
                let n = u64::try_from(undecided).map_or(left, |u| u.min(left));
                // `n <= undecided`, so it fits a usize.
                self.decided += usize::try_from(n).unwrap_or(undecided);
                self.next = match left - n {
                    0 => Next::Head,
                    left => Next::Body(left),
                };
            }
            Next::Head => {
                if !self.inspect_head() {
                    if undecided < self.max_head && !self.eof {
                        return false;
                    }
                    self.pass_through();
                }
            }
        }
        true
    }

    /// Inspects the head at `buf[decided..]`. When it is complete, decides it (its
    /// `Content-Length` renamed if hyper would refuse it) and sets `next` to what follows,
    /// or passes everything through if the guard will not follow this connection further;
    /// false when it is not complete yet.
    fn inspect_head(&mut self) -> bool {
        let head = &self.buf[self.decided..];
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let len = match request.parse(head) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return false,
            Err(_) => return self.pass_through(),
        };
        if len > self.max_head {
            return self.pass_through();
        }
        let mut opaque = request.method == Some("CONNECT");
        // Where each `Content-Length` name starts in `head`, and its length if hyper takes it.
        let mut lengths: Vec<(Option<usize>, Option<u64>)> = Vec::new();
        for header in request.headers.iter() {
            let name = header.name;
            if name.eq_ignore_ascii_case("transfer-encoding")
                || name.eq_ignore_ascii_case("upgrade")
            {
                opaque = true;
            } else if name.eq_ignore_ascii_case("content-length") {
                lengths.push((offset_in(head, name.as_bytes()), body_length(header.value)));
            }
        }
        if opaque {
            return self.pass_through();
        }
        let first = lengths.first().map(|&(_, n)| n);
        match first {
            None => self.next = Next::Head,
            Some(Some(n)) if lengths.iter().all(|&(_, m)| m == Some(n)) => {
                self.next = if n == 0 { Next::Head } else { Next::Body(n) };
            }
            Some(_) => {
                let start = self.decided;
                for (offset, _) in lengths {
                    let name = offset
                        .and_then(|at| self.buf.get_mut(start + at..start + at + NAME_LEN))
                        .filter(|name| name.eq_ignore_ascii_case(b"content-length"));
                    // httparse hands back slices of `head`, so every name is found.
                    if let Some(name) = name {
                        name.copy_from_slice(RENAMED_CONTENT_LENGTH.as_bytes());
                    }
                }
                tracing::debug!("a request's content-length is not a length: renamed");
                return self.pass_through();
            }
        }
        self.decided += len;
        true
    }

    /// Stops inspecting: everything buffered and everything after passes untouched.
    fn pass_through(&mut self) -> bool {
        self.next = Next::Through;
        self.decided = self.buf.len();
        true
    }
}

/// Where `part`, a slice httparse returned from `whole`, starts in `whole`.
fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let at = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (at.checked_add(part.len())? <= whole.len()).then_some(at)
}

/// The body length hyper reads from a `Content-Length` value: ASCII digits only (no sign,
/// no spaces inside; httparse already trimmed the outside), at most [`MAX_BODY_LEN`].
fn body_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value
        .iter()
        .try_fold(0u64, |n, &b| {
            let digit = b.is_ascii_digit().then(|| u64::from(b - b'0'))?;
            n.checked_mul(10)?.checked_add(digit)
        })
        .filter(|&n| n <= MAX_BODY_LEN)
}

impl<IO: AsyncRead + Unpin> HeadGuard<IO> {
    /// Reads up to [`READ_CHUNK`] bytes from `io` onto the end of `buf`.
    ///
    /// The bytes land in an uninitialised chunk on the stack and only those read are copied
    /// on: a poll that finds nothing (every idle keep-alive connection's) neither allocates
    /// nor zeroes `READ_CHUNK` bytes.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut space = ReadBuf::uninit(&mut chunk);
        let read = Pin::new(&mut self.io).poll_read(cx, &mut space);
        let n = space.filled().len();
        self.buf.extend_from_slice(space.filled());
        ready!(read)?;
        if n == 0 {
            self.eof = true;
        }
        Poll::Ready(Ok(n))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for HeadGuard<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            // Hand on what is decided.
            if this.handed < this.decided {
                let n = out.remaining().min(this.decided - this.handed);
                out.put_slice(&this.buf[this.handed..this.handed + n]);
                this.handed += n;
                return Poll::Ready(Ok(()));
            }
            this.buf.drain(..this.handed);
            this.decided -= this.handed;
            this.handed = 0;
            if this.buf.is_empty() {
                // An idle connection holds no buffer; a large head's is not kept.
                this.buf = Vec::new();
            }
            if this.decide() {
                continue;
            }
            if this.eof {
                // Nothing buffered (`decide` passes a partial head on at the end).
                return Poll::Ready(Ok(()));
            }
            // Nothing buffered but a partial head, or nothing at all: read more. Into `out`
            // directly when every byte of it is decided already.
            let direct = match this.next {
                Next::Through => this.buf.is_empty(),
                Next::Body(left) => {
                    this.buf.is_empty()
                        && u64::try_from(out.remaining()).is_ok_and(|room| room <= left)
                }
                Next::Head => false,
            };
            if direct {
                let before = out.filled().len();
                ready!(Pin::new(&mut this.io).poll_read(cx, out))?;
                let n = out.filled().len() - before;
                if n == 0 {
                    this.eof = true;
                } else if let Next::Body(left) = this.next {
                    let n = u64::try_from(n).unwrap_or(left).min(left);
                    this.next = match left - n {
                        0 => Next::Head,
                        left => Next::Body(left),
                    };
                }
                return Poll::Ready(Ok(()));
            }
            ready!(this.fill(cx))?;
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for HeadGuard<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
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

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A reader that returns `chunks` one per read (less if the reader's buffer is
    /// smaller), then its end.
    struct Script(VecDeque<Vec<u8>>);

    impl AsyncRead for Script {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let chunks = &mut self.get_mut().0;
            if let Some(mut chunk) = chunks.pop_front() {
                let n = chunk.len().min(out.remaining());
                out.put_slice(&chunk[..n]);
                if n < chunk.len() {
                    chunks.push_front(chunk.split_off(n));
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    /// What hyper reads of `input` through a guard when the socket returns it `chunk`
    /// bytes at a time and hyper asks for `ask` bytes at a time.
    async fn guarded(input: &[u8], chunk: usize, ask: usize, max_head: usize) -> Vec<u8> {
        let script = Script(input.chunks(chunk).map(<[u8]>::to_vec).collect());
        let mut guard = HeadGuard::new(script, max_head);
        let (mut out, mut buf) = (Vec::new(), vec![0; ask]);
        loop {
            let n = guard.read(&mut buf).await.expect("a script never fails");
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// `input` through a guard in every way of splitting it, all giving the same bytes.
    async fn through_guard(input: &[u8], max_head: usize) -> Vec<u8> {
        let whole = guarded(input, input.len().max(1), 8192, max_head).await;
        for chunk in [1, 2, 3, 7, 64, 4096] {
            for ask in [1, 5, 8192] {
                let out = guarded(input, chunk, ask, max_head).await;
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&whole),
                    "read {chunk} bytes at a time, asked {ask} at a time"
                );
            }
        }
        whole
    }

    fn post(length: &str, body: &str) -> Vec<u8> {
        format!(
            "POST /resource_providers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {length}\r\n\r\n{body}"
        )
        .into_bytes()
    }

    /// A body that reads as a head with a refused length, then as the end of one.
    const TRICKY_BODY: &str =
        "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\nContent-Length: hi\r\n\r\n";
    const GET: &[u8] = b"GET /resource_providers HTTP/1.1\r\nhost: x\r\n\r\n";

    fn renamed(head: &[u8]) -> Vec<u8> {
        String::from_utf8_lossy(head)
            .replacen("Content-Length", RENAMED_CONTENT_LENGTH, 1)
            .into_bytes()
    }

    #[tokio::test]
    async fn valid_requests_pass_byte_for_byte() {
        let input = [
            GET,
            &post(&TRICKY_BODY.len().to_string(), TRICKY_BODY),
            b"\r\n", // hyper skips empty lines before a request line
            GET,
            b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\ncontent-length: 5\r\n\r\nhello",
            b"POST /x HTTP/1.0\nContent-Length:  3 \n\nabc", // bare LF; spaces trimmed
            &post("0", ""),
            b"GET /y HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nhi",
            GET,
        ]
        .concat();
        assert_eq!(through_guard(&input, 8192).await, input);
    }

    #[tokio::test]
    async fn refused_lengths_are_renamed_and_the_rest_passes() {
        let after = [b"{\"a\": 1}".as_slice(), &post("hi", "")].concat();
        for length in [
            "hi mom",
            "-1",
            "+5",
            "5 5",
            "5,5",
            "0x10",
            "",
            "18446744073709551614", // u64::MAX - 1: hyper's mark of a chunked body
            "99999999999999999999999",
        ] {
            let input = [post(length, ""), after.clone()].concat();
            let expected = [renamed(&post(length, "")), after.clone()].concat();
            assert_eq!(
                String::from_utf8_lossy(&through_guard(&input, 8192).await),
                String::from_utf8_lossy(&expected),
                "content-length: {length}"
            );
        }
        // The largest length hyper takes is followed as a body.
        let input = post("18446744073709551613", TRICKY_BODY);
        assert_eq!(through_guard(&input, 8192).await, input);
    }

    #[tokio::test]
    async fn differing_repeated_lengths_are_all_renamed() {
        for second in ["6", "x"] {
            let head =
                format!("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: {second}\r\n\r\n");
            let expected = head.replace("Content-Length", RENAMED_CONTENT_LENGTH);
            let input = format!("{head}hello");
            assert_eq!(
                String::from_utf8_lossy(&through_guard(input.as_bytes(), 8192).await),
                format!("{expected}hello")
            );
        }
    }

    #[tokio::test]
    async fn pipelined_heads_are_each_inspected() {
        let body = TRICKY_BODY;
        let input = [
            GET,
            &post(&body.len().to_string(), body),
            GET,
            &post("hi mom", "{}"),
        ]
        .concat();
        let expected = [
            GET,
            &post(&body.len().to_string(), body),
            GET,
            &renamed(&post("hi mom", "")),
            b"{}",
        ]
        .concat();
        assert_eq!(
            String::from_utf8_lossy(&through_guard(&input, 8192).await),
            String::from_utf8_lossy(&expected)
        );
    }

    #[tokio::test]
    async fn opaque_framing_passes_everything_through() {
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                        5\r\nhello\r\n0\r\n\r\n";
        let te_and_bad_length =
            b"POST / HTTP/1.1\r\nContent-Length: hi\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let upgrade = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
        let connect = b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n";
        for opening in [&chunked[..], te_and_bad_length, upgrade, connect] {
            let input = [opening, &post("hi mom", "{}")].concat();
            assert_eq!(
                String::from_utf8_lossy(&through_guard(&input, 8192).await),
                String::from_utf8_lossy(&input)
            );
        }
    }

    #[tokio::test]
    async fn heads_it_cannot_follow_pass_through() {
        let unparsable = b"POST\x01 / HTTP/1.1\r\nContent-Length: hi\r\n\r\n".to_vec();
        let too_many_headers = [
            b"POST / HTTP/1.1\r\n".as_slice(),
            &b"a: b\r\n".repeat(MAX_HEADERS),
            b"Content-Length: hi\r\n\r\n",
        ]
        .concat();
        let cut_short = b"POST / HTTP/1.1\r\nContent-Length: hi mom\r\n".to_vec();
        for input in [unparsable, too_many_headers, cut_short] {
            assert_eq!(through_guard(&input, 8192).await, input);
        }
        // Larger than the limit, complete or not.
        let long = format!(
            "POST /{} HTTP/1.1\r\nContent-Length: hi\r\n\r\n",
            "a".repeat(64)
        );
        assert_eq!(through_guard(long.as_bytes(), 64).await, long.as_bytes());
        let input = [GET, long.as_bytes(), &post("hi", "")].concat();
        assert_eq!(through_guard(&input, 64).await, input);
    }

    #[tokio::test]
    async fn a_partial_head_beyond_the_limit_is_handed_on_at_once() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut guard = HeadGuard::new(server, 64);
        let partial = format!("GET /{} HTTP/1.1\r\nHost", "a".repeat(100));
        client.write_all(partial.as_bytes()).await.expect("duplex");
        let mut out = vec![0; 8192];
        let n = tokio::time::timeout(Duration::from_secs(5), guard.read(&mut out))
            .await
            .expect("handed on without the rest of the head")
            .expect("duplex");
        assert_eq!(&out[..n], partial.as_bytes());
    }

    #[tokio::test]
    async fn a_body_that_comes_later_is_followed() {
        // Expect: 100-continue: the client waits for hyper before sending the body.
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut guard = HeadGuard::new(server, 8192);
        let head = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 19\r\n\r\n";
        client.write_all(head).await.expect("duplex");
        let mut out = vec![0; 8192];
        let n = guard.read(&mut out).await.expect("duplex");
        assert_eq!(&out[..n], head);
        client
            .write_all(b"Content-Length: x\r\n")
            .await
            .expect("duplex");
        let n = guard.read(&mut out).await.expect("duplex");
        assert_eq!(&out[..n], b"Content-Length: x\r\n");
        let next = post("hi mom", "");
        client.write_all(&next).await.expect("duplex");
        drop(client);
        let mut rest = Vec::new();
        guard.read_to_end(&mut rest).await.expect("duplex");
        assert_eq!(rest, renamed(&next));
    }

    #[tokio::test]
    async fn writes_pass_straight_through() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut guard = HeadGuard::new(server, 8192);
        guard
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .expect("duplex");
        guard.flush().await.expect("duplex");
        guard.shutdown().await.expect("duplex");
        let mut seen = Vec::new();
        client.read_to_end(&mut seen).await.expect("duplex");
        assert_eq!(seen, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    }

    #[test]
    fn body_lengths_are_hypers() {
        assert_eq!(body_length(b"0"), Some(0));
        assert_eq!(body_length(b"007"), Some(7));
        assert_eq!(body_length(b"18446744073709551613"), Some(MAX_BODY_LEN));
        for refused in [
            &b""[..],
            b"-1",
            b"+1",
            b"1 ",
            b"1_0",
            b"18446744073709551614",
            b"\xff",
        ] {
            assert_eq!(body_length(refused), None, "{refused:?}");
        }
    }
}
