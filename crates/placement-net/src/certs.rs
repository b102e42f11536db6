//! Generating a cluster CA and the certificates it issues (`placementd cert`).
//!
//! A cluster's certificates come from its own CA: the peer port trusts nothing else. This
//! module makes one, and issues node certificates (`node<ID>`, with the node's addresses as
//! subject alternative names so the same certificate serves the API port) and operator
//! certificates (`admin`). Keys are ECDSA P-256. Operators with a PKI of their own (Vault,
//! cert-manager) use it instead: any CA works, as long as the names follow
//! [`crate::identity`].

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate and its private key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[error("certificate: {0}")]
pub struct CertError(String);

fn err(e: impl std::fmt::Display) -> CertError {
    CertError(e.to_string())
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = rcgen::date_time_ymd(1970, 1, 1)
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
    // An hour of slack for clocks that lag the issuer's.
    params.not_before = now - std::time::Duration::from_secs(3600);
    params.not_after = now + std::time::Duration::from_secs(u64::from(days) * 86_400);
}

/// A new self-signed CA named `name`, valid for `days`.
pub fn new_ca(name: &str, days: u32) -> Result<Pem, CertError> {
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, days);
    let cert = params.self_signed(&key).map_err(err)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// A certificate for `name` (`node<ID>` or `admin`) signed by `ca`, usable as a TLS server
/// and client, with `name` and every one of `addresses` (IPs or DNS names, ports stripped)
/// as subject alternative names.
pub fn issue(ca: &Pem, name: &str, addresses: &[String], days: u32) -> Result<Pem, CertError> {
    let ca_key = KeyPair::from_pem(&ca.key).map_err(err)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, ca_key).map_err(err)?;
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    let mut sans = vec![SanType::DnsName(name.try_into().map_err(err)?)];
    for address in addresses {
        let host = host_of(address);
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.try_into().map_err(err)?),
        };
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    params.subject_alt_names = sans;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    let cert = params.signed_by(&key, &issuer).map_err(err)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// The host of `host:port`, `[v6]:port`, a bare IP or a bare name.
pub fn host_of(address: &str) -> String {
    if let Ok(sock) = address.parse::<std::net::SocketAddr>() {
        return sock.ip().to_string();
    }
    if address.parse::<IpAddr>().is_ok() {
        return address.to_string();
    }
    match address.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
            host.trim_matches(|c| c == '[' || c == ']').to_string()
        }
        _ => address.to_string(),
    }
}

/// Test support: a new CA and a certificate for `node1` at 127.0.0.1, written into `dir`
/// as the PEM files of the returned paths.
#[cfg(test)]
pub(crate) fn node1_files(dir: &std::path::Path) -> crate::tls::TlsPaths {
    let ca = new_ca("test CA", 1).expect("a CA");
    let node = issue(&ca, "node1", &["127.0.0.1".into()], 1).expect("a cert");
    let paths = crate::tls::TlsPaths {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        ca: Some(dir.join("ca.pem")),
    };
    for (path, pem) in [
        (&paths.cert, &node.cert),
        (&paths.key, &node.key),
        (paths.ca.as_ref().expect("set above"), &ca.cert),
    ] {
        std::fs::write(path, pem).expect("write a PEM file");
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{certificate_names, identity_of, Identity};
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    #[test]
    fn issued_certificates_name_their_holder() {
        let ca = new_ca("test cluster CA", 1).expect("ca");
        let node = issue(
            &ca,
            "node3",
            &["127.0.0.1:8779".into(), "placement-2.placement:8778".into()],
            1,
        )
        .expect("node cert");
        let der = CertificateDer::from_pem_slice(node.cert.as_bytes()).expect("pem");
        assert_eq!(identity_of(der.as_ref()).expect("id"), Identity::Node(3));
        let names = certificate_names(der.as_ref()).expect("names");
        assert!(
            names.contains(&"placement-2.placement".to_string()),
            "{names:?}"
        );
        let admin = issue(&ca, "admin", &[], 1).expect("admin cert");
        let der = CertificateDer::from_pem_slice(admin.cert.as_bytes()).expect("pem");
        assert_eq!(identity_of(der.as_ref()).expect("id"), Identity::Admin);
    }

    #[test]
    fn hosts_lose_their_ports() {
        assert_eq!(host_of("127.0.0.1:8779"), "127.0.0.1");
        assert_eq!(host_of("[::1]:8779"), "::1");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of("db.example:8778"), "db.example");
        assert_eq!(host_of("db.example"), "db.example");
    }
}
