//! [`HttpLink`]: a [`PeerLink`] of HTTP/1.1 over TCP with pooled keep-alive connections,
//! and mutual TLS when the peer port has it. Production calls go over channels
//! ([`ChannelLink`](super::channel::ChannelLink)), which use this link for snapshot streams
//! and for members that do not take channels.
//!
//! # TLS and who is called
//! With TLS a member is called as `https://node<ID>/...`: the name resolves to the address
//! the membership records for that node ([`PeerResolver`]), and the server must present a
//! certificate from the cluster CA naming `node<ID>`
//! (`placement_net::tls::ClusterServerVerifier`); this node presents its own. So a call
//! reaches the member it means or fails, whatever answers at the address. Certificates
//! rotated on disk are picked up by the next connection (the client is rebuilt when the TLS
//! generation changes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use placement_net::TlsSource;
use placement_storage::NodeId;

use super::client::{TransportError, CONNECT_TIMEOUT, POOL_IDLE_TIMEOUT};
use super::link::{PeerBody, PeerLink, PeerReply};
use super::wire::Peer;

/// Resolves `node<ID>` to the address the membership records for node `ID` (the link
/// learns it from each call's [`Peer`]); a DNS name there is looked up as usual.
#[derive(Debug, Default)]
pub struct PeerResolver {
    addrs: RwLock<HashMap<NodeId, String>>,
}

impl PeerResolver {
    fn remember(&self, peer: &Peer) {
        let known = self
            .addrs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&peer.id)
            .is_some_and(|a| *a == peer.addr);
        if !known {
            self.addrs
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(peer.id, peer.addr.clone());
        }
    }
}

impl reqwest::dns::Resolve for PeerResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let addr = placement_net::parse_node_name(name.as_str()).and_then(|id| {
            self.addrs
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&id)
                .cloned()
        });
        let name = name.as_str().to_string();
        Box::pin(async move {
            let addr = addr.ok_or_else(|| format!("{name} is not a known member"))?;
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host(addr.as_str()).await?.collect();
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// Peer calls over HTTP(S): one pooled client for the peer ports of all members.
#[derive(Debug)]
pub struct HttpLink {
    tls: Option<Arc<TlsSource>>,
    resolver: Arc<PeerResolver>,
    /// The client, and the TLS generation it was built for.
    http: Mutex<(u64, reqwest::Client)>,
}

fn build_http(
    tls: Option<&TlsSource>,
    resolver: &Arc<PeerResolver>,
) -> Result<reqwest::Client, crate::Error> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    if let Some(tls) = tls {
        let config = tls.client().ok_or_else(|| {
            crate::Error::Config("the peer TLS configuration has no client side".into())
        })?;
        builder = builder
            .use_preconfigured_tls((*config).clone())
            .dns_resolver(resolver.clone())
            .https_only(true);
    }
    builder
        .build()
        .map_err(|e| crate::Error::Config(format!("peer HTTP client: {e}")))
}

impl HttpLink {
    /// A link that calls members over TLS when `tls` (the peer port's configuration) is
    /// given, in plaintext otherwise.
    pub fn new(tls: Option<Arc<TlsSource>>) -> Result<Self, crate::Error> {
        let resolver = Arc::new(PeerResolver::default());
        let generation = tls.as_ref().map_or(0, |t| t.generation());
        let http = build_http(tls.as_deref(), &resolver)?;
        Ok(HttpLink {
            tls,
            resolver,
            http: Mutex::new((generation, http)),
        })
    }

    /// The HTTP client, rebuilt when the certificates were reloaded.
    fn http(&self) -> reqwest::Client {
        let mut http = self.http.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tls) = &self.tls {
            let generation = tls.generation();
            if generation != http.0 {
                match build_http(Some(tls), &self.resolver) {
                    Ok(client) => *http = (generation, client),
                    Err(e) => tracing::error!(error = %e, "peer client not rebuilt"),
                }
            }
        }
        http.1.clone()
    }

    fn url(&self, peer: &Peer, path: &str) -> String {
        match &self.tls {
            Some(_) => {
                self.resolver.remember(peer);
                format!("https://{}{path}", placement_net::node_name(peer.id))
            }
            None => format!("http://{}{path}", peer.addr),
        }
    }
}

/// A reqwest failure as a transport error: `Connect` when no connection was made.
fn transport(addr: &str, e: &reqwest::Error) -> TransportError {
    // The source chain says why (a refused certificate, a reset); the top error alone only
    // says that sending failed.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    let addr = addr.to_string();
    if e.is_connect() {
        TransportError::Connect { addr, message }
    } else {
        TransportError::Call { addr, message }
    }
}

impl PeerLink for HttpLink {
    fn post(
        &self,
        peer: &Peer,
        path: &'static str,
        body: PeerBody,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<PeerReply, TransportError>> {
        let body = match body {
            PeerBody::Full(bytes) => reqwest::Body::from(bytes),
            PeerBody::Stream(stream) => reqwest::Body::wrap_stream(stream),
        };
        let request = self
            .http()
            .post(self.url(peer, path))
            .timeout(timeout)
            .body(body);
        let addr = peer.addr.clone();
        Box::pin(async move {
            let mut response = request.send().await.map_err(|e| transport(&addr, &e))?;
            let status = response.status().as_u16();
            let mut body: Vec<u8> = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| transport(&addr, &e))? {
                if body.len() + chunk.len() > crate::MAX_PEER_BODY {
                    return Err(TransportError::Call {
                        addr,
                        message: format!("answer larger than {} bytes", crate::MAX_PEER_BODY),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(PeerReply { status, body })
        })
    }
}
