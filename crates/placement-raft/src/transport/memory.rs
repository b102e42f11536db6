//! [`MemoryNetwork`]: an in-process [`PeerLink`] for running several members in one test
//! process, with faults on demand.
//!
//! Each member registers the router of its peer port ([`peer_router`](super::peer_router))
//! with [`MemoryNetwork::serve`] and sends through [`MemoryNetwork::link`]. A call becomes an
//! HTTP request handed straight to the target's router: no socket, but the same client, the
//! same handlers, bounds and guards as a deployed cluster. The request carries the sender's
//! identity as a verified client certificate would (`ConnInfo` naming `node<ID>`), so the
//! peer port checks who speaks exactly as it does under mutual TLS.
//!
//! # Faults
//! [`Rule`]s pick calls by sender, target and path and apply a [`Fault`]:
//! - [`Fault::Drop`]: the request never arrives; the call fails after the connect timeout,
//!   as it does towards a host behind a blackhole route;
//! - [`Fault::DropReply`]: the request is served, its answer lost (a reset after the request
//!   was read): the sender cannot tell whether it took effect;
//! - [`Fault::Delay`]: the request arrives that much later.
//!
//! [`MemoryNetwork::partition`] and [`MemoryNetwork::isolate`] are drops between groups of
//! nodes, [`MemoryNetwork::pause`] delays everything to and from a node past any timeout (a
//! stopped process whose connections stay open); [`MemoryNetwork::heal`] removes every rule. A node that does not serve (stopped, or
//! not started yet) refuses connections at once, like a closed port.
//!
//! Time is real: openraft's timers run as in production, so a test waits for an election as a
//! deployed cluster does (about a second or two).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use futures::future::BoxFuture;
use placement_net::{ConnInfo, Identity};
use placement_storage::NodeId;
use tower::ServiceExt;

use super::client::{TransportError, CONNECT_TIMEOUT};
use super::link::{PeerBody, PeerLink, PeerReply};
use super::wire::Peer;

/// How long a paused node's calls are held: longer than any peer call's timeout.
const PAUSED: Duration = Duration::from_secs(24 * 3600);

/// What happens to a call a [`Rule`] picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request never arrives: the call fails once the connect timeout (or the call's own,
    /// if shorter) has passed.
    Drop,
    /// The request is served; its answer is lost on the way back.
    DropReply,
    /// The request arrives this much later (the call fails if its timeout comes first).
    Delay(Duration),
}

/// Which calls a fault applies to: `None` matches any sender, target or path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub from: Option<NodeId>,
    pub to: Option<NodeId>,
    pub path: Option<&'static str>,
    pub fault: Fault,
    /// The rule applies to this many calls, then lapses; `None`: until removed.
    pub times: Option<u32>,
}

impl Rule {
    /// `fault` on every call from `from` to `to`.
    pub fn between(from: NodeId, to: NodeId, fault: Fault) -> Self {
        Rule {
            from: Some(from),
            to: Some(to),
            path: None,
            fault,
            times: None,
        }
    }

    /// Only calls to `path` (one of [`paths`](super::paths)).
    pub fn on(mut self, path: &'static str) -> Self {
        self.path = Some(path);
        self
    }

    /// Only the next `n` calls it matches.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, from: NodeId, to: NodeId, path: &str) -> bool {
        self.from.is_none_or(|f| f == from)
            && self.to.is_none_or(|t| t == to)
            && self.path.is_none_or(|p| p == path)
    }
}

/// The in-process network of a test cluster (see the module doc). Shared by its members.
#[derive(Debug, Default)]
pub struct MemoryNetwork {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    routers: HashMap<NodeId, Router>,
    rules: Vec<Rule>,
    /// Calls served, by sender, target and path.
    served: HashMap<(NodeId, NodeId, &'static str), u64>,
}

impl MemoryNetwork {
    pub fn new() -> Arc<Self> {
        Arc::new(MemoryNetwork::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The link node `from` sends through.
    pub fn link(self: &Arc<Self>, from: NodeId) -> Arc<dyn PeerLink> {
        Arc::new(MemoryLink {
            net: self.clone(),
            from,
        })
    }

    /// Node `id` serves its peer port with `router` (replacing an earlier one after a restart).
    pub fn serve(&self, id: NodeId, router: Router) {
        self.lock().routers.insert(id, router);
    }

    /// Node `id` no longer serves: calls to it are refused.
    pub fn stop_serving(&self, id: NodeId) {
        self.lock().routers.remove(&id);
    }

    /// Adds a fault rule (the first matching rule applies).
    pub fn add(&self, rule: Rule) {
        self.lock().rules.push(rule);
    }

    /// Drops every call between nodes of different groups, both ways.
    pub fn partition(&self, groups: &[&[NodeId]]) {
        let mut inner = self.lock();
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i == j {
                    continue;
                }
                for &from in a.iter() {
                    for &to in b.iter() {
                        inner.rules.push(Rule::between(from, to, Fault::Drop));
                    }
                }
            }
        }
    }

    /// Drops every call to and from `id`.
    pub fn isolate(&self, id: NodeId) {
        self.to_and_from(id, Fault::Drop);
    }

    /// Node `id` stops answering as a paused process does (SIGSTOP): calls to and from it
    /// are accepted and then hang until their own timeouts.
    pub fn pause(&self, id: NodeId) {
        self.to_and_from(id, Fault::Delay(PAUSED));
    }

    fn to_and_from(&self, id: NodeId, fault: Fault) {
        let mut inner = self.lock();
        for outgoing in [true, false] {
            inner.rules.push(Rule {
                from: outgoing.then_some(id),
                to: (!outgoing).then_some(id),
                path: None,
                fault,
                times: None,
            });
        }
    }

    /// Removes every fault rule.
    pub fn heal(&self) {
        self.lock().rules.clear();
    }

    /// How many calls from `from` to `to` on `path` were served (answered or not).
    pub fn served(&self, from: NodeId, to: NodeId, path: &'static str) -> u64 {
        self.lock()
            .served
            .get(&(from, to, path))
            .copied()
            .unwrap_or(0)
    }

    /// The fault for one call, counting it against a rule with a number of `times`; and the
    /// target's router, if it serves.
    fn route(&self, from: NodeId, to: NodeId, path: &str) -> (Option<Fault>, Option<Router>) {
        let mut inner = self.lock();
        let mut fault = None;
        if let Some(at) = inner.rules.iter().position(|r| r.matches(from, to, path)) {
            let rule = &mut inner.rules[at];
            fault = Some(rule.fault);
            if let Some(n) = rule.times.as_mut() {
                *n -= 1;
                if *n == 0 {
                    inner.rules.remove(at);
                }
            }
        }
        (fault, inner.routers.get(&to).cloned())
    }

    fn count(&self, from: NodeId, to: NodeId, path: &'static str) {
        *self.lock().served.entry((from, to, path)).or_default() += 1;
    }
}

/// One node's end of a [`MemoryNetwork`].
#[derive(Debug)]
struct MemoryLink {
    net: Arc<MemoryNetwork>,
    from: NodeId,
}

impl PeerLink for MemoryLink {
    fn post(
        &self,
        peer: &Peer,
        path: &'static str,
        body: PeerBody,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<PeerReply, TransportError>> {
        let net = self.net.clone();
        let from = self.from;
        let to = peer.id;
        let addr = peer.addr.clone();
        Box::pin(async move {
            let started = tokio::time::Instant::now();
            let call = |message: String| TransportError::Call {
                addr: addr.clone(),
                message,
            };
            let (fault, router) = net.route(from, to, path);
            match fault {
                Some(Fault::Drop) => {
                    tokio::time::sleep(CONNECT_TIMEOUT.min(timeout)).await;
                    return Err(TransportError::Connect {
                        addr,
                        message: "dropped by the test network".into(),
                    });
                }
                Some(Fault::Delay(delay)) if delay >= timeout => {
                    tokio::time::sleep(timeout).await;
                    return Err(call(format!("timed out after {timeout:?} (delayed)")));
                }
                Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
                Some(Fault::DropReply) | None => {}
            }
            let Some(router) = router else {
                return Err(TransportError::Connect {
                    addr,
                    message: format!("node {to} is not serving"),
                });
            };
            let body = match body {
                PeerBody::Full(bytes) => Body::from(bytes),
                PeerBody::Stream(stream) => Body::from_stream(stream),
            };
            let mut request = axum::http::Request::post(path)
                .body(body)
                .map_err(|e| call(format!("request: {e}")))?;
            request.extensions_mut().insert(ConnInfo {
                remote: SocketAddr::from(([127, 0, 0, 1], 0)),
                tls: true,
                client: Some(Identity::Node(from)),
            });
            let remaining = timeout.saturating_sub(started.elapsed());
            let served = async {
                let response = router
                    .oneshot(request)
                    .await
                    .map_err(|e| call(format!("router: {e}")))?;
                let status = response.status().as_u16();
                let body = axum::body::to_bytes(response.into_body(), crate::MAX_PEER_BODY)
                    .await
                    .map_err(|e| call(format!("answer: {e}")))?;
                Ok::<_, TransportError>(PeerReply {
                    status,
                    body: body.to_vec(),
                })
            };
            let reply = tokio::time::timeout(remaining, served)
                .await
                .map_err(|_| call(format!("timed out after {timeout:?}")))??;
            net.count(from, to, path);
            if fault == Some(Fault::DropReply) {
                return Err(call("the answer was lost by the test network".into()));
            }
            Ok(reply)
        })
    }
}
