//! placement-net: how placementd's two ports meet the network — TLS, peer identities, and
//! the connection and request limits that keep a hostile client from hanging or exhausting
//! a node.
//!
//! # DESIGN
//! - **One accept loop for both ports** ([`serve`]): the REST API and the peer port differ
//!   only in their router, their TLS role and their limits, so every defence (connection
//!   cap, handshake and header timeouts, head size) is written once.
//! - **hyper's parser gets the last word, except on one header** ([`head_guard`]): a
//!   `Content-Length` hyper would refuse with a bare 400 is renamed before hyper reads the
//!   head, so the API answers it as Placement does; nothing else in the byte stream changes.
//! - **Members talk over channels** ([`channel`]): on the peer port, a connection that opens
//!   with the channel preamble carries many calls at once as binary frames, each handed to
//!   the same router as an HTTP request would be, so the port's guards and limits hold for
//!   both; the frames have their own bounds (size, arrival time, calls in flight, idle).
//! - **Identities come from certificates** ([`identity`]): on the peer port every
//!   connection presents a certificate from the cluster's CA, and the names in it
//!   (`node<ID>`, `admin`) are what the peer handlers authorize. Nothing a client sends in a
//!   header or body can claim an identity.
//! - **Certificates rotate without a restart** ([`tls`]): new connections pick up changed
//!   files; a bad file never replaces a good configuration.
//! - **Per-request limits are middleware** ([`layers`]) placed by each router where they
//!   belong (shedding, a deadline, catching panics), answering bare statuses the API
//!   renders in Placement's error format.
//! - **rustls with ring only**, never OpenSSL or aws-lc-rs: a pure build on two cores.
//!
//! Left out: certificate revocation lists (remove a member, then stop trusting its
//! certificate by rotating the CA), and TLS client authentication on the API port (clients
//! authenticate with tokens).

pub mod certs;
pub mod channel;
pub mod head_guard;
pub mod identity;
pub mod layers;
pub mod reload;
pub mod serve;
pub mod tls;

pub use channel::{Channel, ChannelError, ChannelLimits};
pub use identity::{identity_of, node_name, parse_node_name, ConnInfo, Identity};
pub use serve::{serve, ServeConfig};
pub use tls::{TlsError, TlsPaths, TlsRole, TlsSource};
