//! placement-raft
