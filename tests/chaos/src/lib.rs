//! placementd's chaos suite (issue 13): a random Placement workload on a real cluster while a
//! nemesis injects faults, then checkers over the recorded history. `scripts/chaos` runs it;
//! docs/chaos.md says what it does and how to read its output.
//!
//! - [`history`]: what was recorded (operations, outcomes, the final state of every node);
//! - [`check`]: the checkers, pure functions of a history;
//! - [`cluster`]: the real processes, network namespaces and the admin CLI;
//! - [`workload`]: the clients;
//! - [`nemesis`]: the faults, and [`majority`]: the majority-lost phase;
//! - [`settle`]: convergence and the final state after the faults;
//! - [`report`]: what a run prints.

pub mod check;
pub mod cluster;
pub mod history;
pub mod majority;
pub mod nemesis;
pub mod report;
pub mod settle;
pub mod workload;
