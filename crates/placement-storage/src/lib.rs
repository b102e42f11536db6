//! placement-storage
