//! The state machine's golden scripts (`testscripts/*.txt`), one test per file: each file
//! runs from an empty [`World`] through [`crate::fixture::script`]'s commands. The format and
//! `UPDATE_GOLDEN=1` are described in `placement_testkit` and `docs/testing.md`.

use std::path::Path;

use crate::fixture::{script, World};

fn run(path: &Path) {
    let mut world = World::new();
    placement_testkit::run(path, |case| script::run(&mut world, case));
}

placement_testkit::golden_tests!(
    "testscripts", run;
    providers,
    validate,
    allocations,
    generations,
    reshape,
    import,
    candidates,
    candidates_windows,
    candidates_bound,
    huge_amounts,
);
