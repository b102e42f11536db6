//! Shared fixtures for integration tests: real placementd processes on loopback ports.
