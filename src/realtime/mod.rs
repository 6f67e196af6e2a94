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
mod changelog;
mod channel;
mod feed;
mod payload;
mod settings;
mod setup;
mod transition;
mod trigger;

pub use setup::{enable, KeyColumns, Payload};
pub use trigger::Fanout;

/// Let `fanout` name who else hears an owner's rows (set once, at load).
pub fn set_fanout(fanout: Fanout) {
    let _ = trigger::FANOUT.set(fanout);
}

pub fn init() {
    feed::init();
    settings::init();
}

use pgrx::prelude::*;

extension_sql_file!(
    "../../sql/realtime.sql",
    name = "realtime",
    requires =
        ["bootstrap", "auth_tables", _realtime_send, _random_secret, channel_for, realtime_notify, prune_changes]
);

/// Tell `owner`'s live streams that all their data is being erased (sent at commit, before the
/// DELETE notifications of the same transaction).
pub fn announce_erasure(owner: &uuid::Uuid) {
    crate::pg::notify::notify(
        &channel::channel_of(owner),
        r#"{"op":"ERASE","table":null,"part":1,"parts":1,"rows":[]}"#,
    );
}
