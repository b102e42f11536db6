//! Serves the API over an in-memory [`LocalBackend`] — no Raft, no RocksDB — for running
//! Placement's conformance suite against the HTTP layer alone:
//!
//! ```sh
//! cargo run -p placement-api --example local_server -- --listen 127.0.0.1:8778
//! ```
//!
//! Prints the base URL on the first stdout line, as the suite expects.

use std::sync::Arc;

use placement_api::{router, ApiConfig, LocalBackend};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen = "127.0.0.1:8778".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--listen" {
            listen = args.next().ok_or("--listen needs an address")?;
        }
    }
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("http://{}", listener.local_addr()?);
    // The conformance suite tells which Placement fixture (policy mode, CORS) it wants.
    let config = std::env::var("CONFORMANCE_FIXTURE")
        .map(|f| ApiConfig::for_conformance_fixture(&f))
        .unwrap_or_default();
    let app = router(Arc::new(LocalBackend::new()), config);
    axum::serve(listener, app).await?;
    Ok(())
}
