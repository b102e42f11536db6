//! Unit and property tests of the allocation-candidates search.
