//! The Tidings server as a library: listener, sessions, hub, storage and broker.
//!
//! It lands with issue 3 (`tidings serve`); until then the workspace keeps its place so that the layout shows
//! the architecture described in ARCHITECTURE.md.
