//! Everything the functions share: event shapes, pure decisions, AWS adapters, notification
//! rendering, configuration and telemetry. A function crate only wires these together.

pub mod aws;
pub mod config;
pub mod events;
pub mod host;
pub mod image;
pub mod launch;
pub mod notify;
pub mod promote;
pub mod promotion;
pub mod telemetry;
