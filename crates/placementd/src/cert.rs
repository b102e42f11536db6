//! `placementd cert …`: a cluster CA and the certificates it issues, as PEM files in one
//! directory, for clusters without a PKI of their own (and for `scripts/run` and the tests).
//!
//! ```text
//! placementd cert ca    --dir /etc/placementd/pki                 # ca.pem, ca-key.pem
//! placementd cert node 1 --dir /etc/placementd/pki --address 10.0.0.1:8778 --address 10.0.0.1:8779
//!                                                                 # node1.pem, node1-key.pem
//! placementd cert admin --dir /etc/placementd/pki                 # admin.pem, admin-key.pem
//! placementd cert server placement-api --dir /etc/placementd/pki --address placement.example
//!                                                       # placement-api.pem (a load balancer)
//! ```
//!
//! A node certificate names `node<ID>` and every address given (so it serves the API port
//! too); the admin certificate names `admin` and is what `placementd cluster --cert` presents.
//! Keys are written with mode 0600 and never overwritten. Keep `ca-key.pem` off the nodes:
//! whoever has it can mint a member.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use placement_net::certs::{self, Pem};

/// Make certificates for a cluster.
#[derive(Debug, Args)]
pub struct CertArgs {
    /// Directory of the CA and the certificates (created if missing).
    #[arg(long, env = "PLACEMENTD_PKI_DIR", default_value = "./placementd-pki")]
    dir: PathBuf,

    /// Days the certificate is valid.
    #[arg(long)]
    days: Option<u32>,

    #[command(subcommand)]
    command: CertCommand,
}

#[derive(Debug, Subcommand)]
enum CertCommand {
    /// Create the cluster CA: ca.pem and ca-key.pem.
    Ca,
    /// Issue node ID's certificate (node<ID>.pem, node<ID>-key.pem), naming `node<ID>` and
    /// each address (`host:port` or a host) clients and peers reach it at.
    Node {
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        id: u64,
        /// An address of the node (repeat); its host goes into the certificate.
        #[arg(long = "address")]
        addresses: Vec<String>,
    },
    /// Issue an operator certificate (admin.pem, admin-key.pem) for `placementd cluster`.
    Admin,
    /// Issue a certificate for another TLS server of the deployment, such as the load
    /// balancer in front of the API (NAME.pem, NAME-key.pem). It is no member: the peer port
    /// refuses it.
    Server {
        /// Its name (not `node<ID>` nor `admin`).
        name: String,
        /// An address clients reach it at (repeat); its host goes into the certificate.
        #[arg(long = "address")]
        addresses: Vec<String>,
    },
}

/// A CA is valid ten years by default; what it issues, a little over two (browsers' limit,
/// and a reminder to rotate).
const CA_DAYS: u32 = 3650;
const LEAF_DAYS: u32 = 825;

fn write_new(path: &Path, contents: &str, mode: u32) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn save(dir: &Path, name: &str, pem: &Pem) -> Result<(PathBuf, PathBuf), String> {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    for path in [&cert, &key] {
        if path.exists() {
            return Err(format!(
                "{} exists; remove it first to issue a new one",
                path.display()
            ));
        }
    }
    write_new(&key, &pem.key, 0o600)?;
    write_new(&cert, &pem.cert, 0o644)?;
    Ok((cert, key))
}

fn load_ca(dir: &Path) -> Result<Pem, String> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e} (create the CA first: placementd cert ca --dir {})",
                path.display(),
                dir.display()
            )
        })
    };
    Ok(Pem {
        cert: read("ca.pem")?,
        key: read("ca-key.pem")?,
    })
}

/// Runs one `placementd cert` command; prints the files written.
pub fn run(args: CertArgs) -> Result<(), String> {
    std::fs::create_dir_all(&args.dir).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    let (cert, key) = match args.command {
        CertCommand::Ca => {
            let pem = certs::new_ca("placementd cluster CA", args.days.unwrap_or(CA_DAYS))
                .map_err(|e| e.to_string())?;
            save(&args.dir, "ca", &pem)?
        }
        CertCommand::Node { id, addresses } => {
            let ca = load_ca(&args.dir)?;
            let name = placement_net::node_name(id);
            let pem = certs::issue(&ca, &name, &addresses, args.days.unwrap_or(LEAF_DAYS))
                .map_err(|e| e.to_string())?;
            save(&args.dir, &name, &pem)?
        }
        CertCommand::Admin => {
            let ca = load_ca(&args.dir)?;
            let pem = certs::issue(
                &ca,
                placement_net::identity::ADMIN_NAME,
                &[],
                args.days.unwrap_or(LEAF_DAYS),
            )
            .map_err(|e| e.to_string())?;
            save(&args.dir, placement_net::identity::ADMIN_NAME, &pem)?
        }
        CertCommand::Server { name, addresses } => {
            if placement_net::parse_node_name(&name).is_some()
                || name == placement_net::identity::ADMIN_NAME
                || name == "ca"
            {
                return Err(format!(
                    "`{name}` is reserved: use `placementd cert node` or `placementd cert admin`"
                ));
            }
            let ca = load_ca(&args.dir)?;
            let pem = certs::issue(&ca, &name, &addresses, args.days.unwrap_or(LEAF_DAYS))
                .map_err(|e| e.to_string())?;
            save(&args.dir, &name, &pem)?
        }
    };
    println!("{}\n{}", cert.display(), key.display());
    Ok(())
}
