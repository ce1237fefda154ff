//! Resources: the types the config declares, who may do what, their data, and the operations on them.

pub mod access;
mod before;
pub mod data;
mod service;
pub mod types;

pub(crate) use service::{new_id, resource};
pub use service::{Created, EventTopic, Opened, QueuedCreate, ReplayPage, Resources};
pub use types::ResourceTypes;
