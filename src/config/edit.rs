//! TODO(helper): see config/mod.rs
