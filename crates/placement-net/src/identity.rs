//! Who a certificate names, and what a connection proved about its peer.
//!
//! Every certificate of a placementd cluster is issued by the cluster's own CA. The holder's
//! identity is a name in the certificate's subject common name (CN) or in a DNS subject
//! alternative name (SAN):
//!
//! - `node<ID>` (e.g. `node3`): the member with Raft id `ID`. Its certificate also carries the
//!   addresses it is reached at (IP or DNS SANs), so the same certificate can serve the API.
//! - `admin`: an operator (the `placementd cluster` CLI).
//!
//! Anything else the CA signed is [`Identity::Other`]: it proves the CA issued it, and no
//! more. A certificate that names two different nodes is refused as ambiguous.

use std::net::SocketAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The name prefix of a node identity (`node<ID>`).
pub const NODE_NAME_PREFIX: &str = "node";
/// The name of the operator identity.
pub const ADMIN_NAME: &str = "admin";

/// What a certificate from the cluster CA says its holder is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A member node, `node<ID>`.
    Node(u64),
    /// An operator, `admin`.
    Admin,
    /// Any other holder; the string is the first name the certificate gives (for logs).
    Other(String),
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Node(id) => write!(f, "{}", node_name(*id)),
            Identity::Admin => f.write_str(ADMIN_NAME),
            Identity::Other(name) => write!(f, "{name:?}"),
        }
    }
}

/// The identity name of node `id`: `node<ID>`.
pub fn node_name(id: u64) -> String {
    format!("{NODE_NAME_PREFIX}{id}")
}

/// The node id a name stands for: `node` followed by a decimal id ≥ 1 without leading
/// zeros (so that every id has exactly one name).
pub fn parse_node_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(NODE_NAME_PREFIX)?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Why a certificate's names could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IdentityError {
    #[error("unreadable certificate: {0}")]
    Unreadable(String),
    #[error("certificate names several nodes ({0:?})")]
    Ambiguous(Vec<u64>),
}

/// The names a DER certificate gives its holder: the subject CNs, then the DNS SANs.
pub fn certificate_names(der: &[u8]) -> Result<Vec<String>, IdentityError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| IdentityError::Unreadable(e.to_string()))?;
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_string))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push((*dns).to_string());
            }
        }
    }
    Ok(names)
}

/// The identity of a DER certificate (see the module doc).
pub fn identity_of(der: &[u8]) -> Result<Identity, IdentityError> {
    let names = certificate_names(der)?;
    let mut nodes: Vec<u64> = names.iter().filter_map(|n| parse_node_name(n)).collect();
    nodes.sort_unstable();
    nodes.dedup();
    match nodes.as_slice() {
        [id] => Ok(Identity::Node(*id)),
        [] if names.iter().any(|n| n == ADMIN_NAME) => Ok(Identity::Admin),
        [] => Ok(Identity::Other(
            names.into_iter().next().unwrap_or_default(),
        )),
        several => Err(IdentityError::Ambiguous(several.to_vec())),
    }
}

/// What the connection a request came on proved, put into every request's extensions by
/// [`crate::serve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// The TCP peer.
    pub remote: SocketAddr,
    /// The connection is TLS.
    pub tls: bool,
    /// The identity of the verified client certificate, when the port asks for one.
    pub client: Option<Identity>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_have_one_spelling() {
        assert_eq!(parse_node_name("node1"), Some(1));
        assert_eq!(parse_node_name("node42"), Some(42));
        assert_eq!(node_name(42), "node42");
        for bad in [
            "node", "node0", "node01", "node-1", "nodex", "Node1", "node1 ", "xnode1",
        ] {
            assert_eq!(parse_node_name(bad), None, "{bad:?}");
        }
        assert_eq!(parse_node_name("node99999999999999999999"), None);
    }
}
