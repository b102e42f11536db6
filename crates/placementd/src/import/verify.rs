//! `placementd import --verify`: placeholder of the import branch. The comparison itself
//! (REST against REST) is written on the verify branch, whose `verify.rs` replaces this file
//! when the branches merge; its flags and `run` have this signature.

use std::path::PathBuf;

/// The flags of `placementd import --verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The running Placement's API (the source of the import).
    #[arg(long, value_name = "URL", env = "PLACEMENTD_VERIFY_SOURCE_URL")]
    pub source_url: Option<String>,

    /// placementd's API (the target of the import).
    #[arg(long, value_name = "URL", env = "PLACEMENTD_VERIFY_TARGET_URL")]
    pub target_url: Option<String>,

    /// Token sent to the source as X-Auth-Token (`admin` for noauth2).
    #[arg(
        long,
        value_name = "TOKEN",
        default_value = "admin",
        hide_env_values = true
    )]
    pub source_token: String,

    /// Token sent to the target as X-Auth-Token (`admin` for noauth2).
    #[arg(
        long,
        value_name = "TOKEN",
        default_value = "admin",
        hide_env_values = true
    )]
    pub target_token: String,

    /// PEM file of the CA(s) that signed the source's HTTPS certificate.
    #[arg(long, value_name = "FILE")]
    pub source_ca_file: Option<PathBuf>,

    /// PEM file of the CA(s) that signed the target's HTTPS certificate.
    #[arg(long, value_name = "FILE")]
    pub target_ca_file: Option<PathBuf>,
}

/// Compares the source and the target; `Err` when they differ or cannot be read.
pub async fn run(_args: &VerifyArgs) -> Result<(), String> {
    Err("this build has no `--verify` (it comes with the verify branch)".into())
}
