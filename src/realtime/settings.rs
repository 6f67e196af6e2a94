//! The realtime settings of the SQL reference (docs/sql-reference.md, "Settings"), superuser-only
//! like every setting of the extension: an application role can read them but not change them.
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};

/// Whether the realtime triggers NOTIFY the owner's channel (and the grantees') at commit. The
/// change feed is written either way. Off for a database whose subscribers are served by the
/// gateway reading the change feed through logical replication: NOTIFY takes a database-wide
/// lock at every notifying commit, which caps writes near 5,000 transactions per second however
/// many cores there are (docs/realtime.md, "NOTIFY or logical replication").
pub static NOTIFY: GucSetting<bool> = GucSetting::<bool>::new(true);

pub fn init() {
    GucRegistry::define_bool_guc(
        c"health_rls.notify",
        c"Whether realtime triggers send NOTIFY at commit (the change feed is written either way).",
        c"Turn off (ALTER DATABASE … SET health_rls.notify = off) when the gateway reads the change feed by logical replication.",
        &NOTIFY,
        GucContext::Suset,
        GucFlags::default(),
    );
}
