//! An async Rust client for Tidings protocol v1: connect, authenticate, request by requestId, receive pushes.
//!
//! It lands with issue 3, beside the server it is tested against.
