//! Why the suite could not do what it was asked: bad settings, a target that
//! does not answer, a control-plane call that was refused, or a spent budget.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The environment or arguments describe no usable target.
    Settings(String),
    /// The target could not be reached or its answer could not be read.
    Transport(String),
    /// The run already sent as many API requests as `GHL_MAX_REQUESTS` allows.
    RequestCap(u64),
    /// The control plane refused or answered something unexpected.
    ControlPlane(String),
    /// Starting the in-process mock failed.
    Mock(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Settings(m) => write!(f, "settings: {m}"),
            Error::Transport(m) => write!(f, "transport: {m}"),
            Error::RequestCap(cap) => {
                write!(f, "the run has sent its {cap} API requests (GHL_MAX_REQUESTS); no more are sent")
            }
            Error::ControlPlane(m) => write!(f, "control plane: {m}"),
            Error::Mock(m) => write!(f, "in-process mock: {m}"),
        }
    }
}

impl std::error::Error for Error {}
