//! Switch between `std::sync` and loom's model-checked versions, so the shared-memory
//! pieces ([`crate::gate`]) are exercised by loom under `--cfg registrar_loom` and use the
//! real atomics otherwise (a global `--cfg loom` would break tokio and friends).

#[cfg(registrar_loom)]
pub(crate) use loom::sync::atomic;

#[cfg(not(registrar_loom))]
pub(crate) use std::sync::atomic;
