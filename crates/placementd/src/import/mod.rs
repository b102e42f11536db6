//! `placementd import`: adopting the data of a running Placement.
//!
//! This module is the minimal wiring of the `issue11-verify` branch: only
//! `placementd import --verify --source-url URL --target-url URL` (`verify`), which compares
//! a running Placement with placementd through the REST API. The import itself
//! (`--from-db`) lives on the import branch, whose `ImportArgs` flattens `VerifyArgs` the
//! same way.

pub mod verify;

/// The flags of `placementd import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Compare the running Placement (--source-url) with placementd (--target-url) through
    /// the REST API, print the first differences, and fail if there are any.
    #[arg(long)]
    pub verify: bool,

    #[command(flatten)]
    pub verify_args: verify::VerifyArgs,
}

/// Runs `placementd import`.
pub async fn run(args: ImportArgs) -> Result<(), String> {
    if args.verify {
        return verify::run(&args.verify_args).await;
    }
    Err("this build only has `placementd import --verify`".into())
}
