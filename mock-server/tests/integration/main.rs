//! All integration tests of ghl-mock, in one binary (one link on a 2-core machine).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod cli;
mod concurrency;
mod control;
mod corpus;
mod fidelity;
mod flows;
mod hostile;
mod journal;
mod limits;
mod loader;
mod persistence;
mod replicas; // issue 12
mod resources;
mod scopes;
mod secrets;
mod support;
mod validation;
mod versions; // issue 14, item 4
mod walk;
mod webhooks;
