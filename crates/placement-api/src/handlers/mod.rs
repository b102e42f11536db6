//! One module per Placement resource; each exposes `routes<B: Backend>()`.

pub(crate) mod aggregates;
pub(crate) mod allocation_candidates;
pub(crate) mod allocations;
pub(crate) mod inventories;
pub(crate) mod providers;
pub(crate) mod reshaper;
pub(crate) mod resource_classes;
pub(crate) mod root;
pub(crate) mod traits;
pub(crate) mod usages;

use axum::Router;

use crate::{AppState, Backend};

/// Every route of the API.
pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .merge(root::routes::<B>())
        .merge(providers::routes::<B>())
        .merge(inventories::routes::<B>())
        .merge(resource_classes::routes::<B>())
        .merge(traits::routes::<B>())
        .merge(aggregates::routes::<B>())
        .merge(allocations::routes::<B>())
        .merge(usages::routes::<B>())
        .merge(reshaper::routes::<B>())
        .merge(allocation_candidates::routes::<B>())
}
