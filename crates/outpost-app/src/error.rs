//! The error every use-case returns: a code the UI branches on and a message for a person.

use std::fmt;

use serde::Serialize;

use crate::ipc::{ErrorCode, ErrorPayload};

/// A refused or failed use-case. Serializes exactly as [`ErrorPayload`] (`{code, message}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppError {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Plain-words explanation naming what was wrong and where.
    pub message: String,
}

impl AppError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    /// [`ErrorCode::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    /// [`ErrorCode::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }
    /// [`ErrorCode::IllegalTransition`].
    pub fn illegal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::IllegalTransition, message)
    }
    /// [`ErrorCode::Pack`].
    pub fn pack(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Pack, message)
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AppError {}

impl From<AppError> for ErrorPayload {
    fn from(e: AppError) -> Self {
        ErrorPayload {
            code: e.code,
            message: e.message,
        }
    }
}

impl From<outpost_store::StoreError> for AppError {
    fn from(e: outpost_store::StoreError) -> Self {
        match e {
            outpost_store::StoreError::Missing { what, id } => {
                Self::not_found(format!("{what} {id} does not exist"))
            }
            e @ outpost_store::StoreError::Invalid { .. } => {
                Self::new(ErrorCode::InvalidInput, e.to_string())
            }
            other => Self::new(ErrorCode::Storage, other.to_string()),
        }
    }
}

impl From<outpost_geo::PackError> for AppError {
    fn from(e: outpost_geo::PackError) -> Self {
        Self::pack(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_op_is_invalid_input_not_a_storage_failure() {
        let e = AppError::from(outpost_store::StoreError::Invalid {
            kind: "road_closure.set",
            message: "reason is empty".into(),
        });
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("reason is empty"), "{}", e.message);
    }
}
