//! Per-user realtime channels (docs/realtime.md).
//!
//! - `channel`: channel names as capabilities (HMAC of the user id under a per-database secret).
//! - `trigger`: the statement trigger that announces each owner's rows on the owner's channel.
//! - `transition`: reading a statement's transition tables without SQL.
//! - `payload`: packing rows into NOTIFY payloads under the size limit.
//! - `setup`: `enable_realtime` / `disable_realtime` and the trigger DDL they generate.
//!
//! Realtime knows no particular table: the owner column and the key columns to announce are
//! arguments (the health module passes those of its metric tables).
mod channel;
mod payload;
mod setup;
mod transition;
mod trigger;

pub use setup::{enable, KeyColumns, Payload};

use pgrx::prelude::*;

extension_sql_file!(
    "../../sql/realtime.sql",
    name = "realtime",
    requires = ["bootstrap", _realtime_send, _random_secret, channel_for, realtime_notify]
);
