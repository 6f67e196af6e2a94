//! `health.summary` (and the grantee's `health.shared_summary`, in `sharing.rs`): one user's
//! samples of one kind in buckets of local time — hour, day, ISO week (from Monday) or month of an
//! IANA time zone — with count, min, average, max and sum, in the kind's canonical unit (the unit
//! the normalising trigger stores every sample in).
//!
//! Each metric table is aggregated by one `GROUP BY pg_catalog.date_trunc(bucket, recorded_at, tz)`
//! statement, which knows the zone's daylight-saving rules (a local day is 23 or 25 hours at the
//! changes); the per-table partial results are merged here by bucket start. The bucket arithmetic
//! is Postgres's own, so the numbers are those of the same `GROUP BY` written by hand. Tables with
//! a change feed are read from hourly rollups instead where they can answer (src/health/rollup.rs).
use crate::error;
use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::prelude::*;
use std::collections::BTreeMap;

/// A bucket width, as `date_trunc` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
    Week,
    Month,
}

impl Bucket {
    pub fn parse(name: &str) -> Option<Bucket> {
        match name {
            "hour" => Some(Bucket::Hour),
            "day" => Some(Bucket::Day),
            "week" => Some(Bucket::Week),
            "month" => Some(Bucket::Month),
            _ => None,
        }
    }

    /// The `date_trunc` field (a fixed string: the client's text never reaches SQL).
    pub fn field(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
        }
    }
}

/// Count, min, max and sum of one bucket (the average is sum / count).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub n: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
}

impl Stats {
    pub fn merge(&mut self, other: &Stats) {
        self.n += other.n;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    pub fn avg(&self) -> f64 {
        self.sum / self.n as f64
    }
}

/// Partial results of several tables, merged by bucket start (µs since 2000-01-01 UTC, Postgres's
/// epoch) and returned in time order.
#[derive(Default, Debug)]
pub struct Buckets(BTreeMap<i64, Stats>);

impl Buckets {
    pub fn add(&mut self, start: i64, stats: Stats) {
        if stats.n <= 0 {
            return;
        }
        self.0.entry(start).and_modify(|s| s.merge(&stats)).or_insert(stats);
    }

    /// How many samples the buckets summarise.
    pub fn samples(&self) -> i64 {
        self.0.values().map(|s| s.n).sum()
    }

    pub fn into_rows(self) -> Vec<(i64, Stats)> {
        self.0.into_iter().collect()
    }
}

/// One row of `health.summary` / `health.shared_summary`.
pub type Row = (TimestampWithTimeZone, i64, f64, f64, f64, f64);

pub fn rows(buckets: Buckets) -> Vec<Row> {
    buckets
        .into_rows()
        .into_iter()
        .filter_map(|(start, s)| {
            Some((TimestampWithTimeZone::try_from(start).ok()?, s.n, s.min, s.avg(), s.max, s.sum))
        })
        .collect()
}

/// What to summarise: validated arguments.
#[derive(Clone)]
pub struct Request {
    pub user: pgrx::Uuid,
    /// A catalog code.
    pub kind: String,
    pub bucket: Bucket,
    pub tz: String,
    pub from: Option<TimestampWithTimeZone>,
    pub until: Option<TimestampWithTimeZone>,
}

/// Checks the arguments common to both functions: `what` names the function in messages.
pub fn request(
    what: &str,
    user: pgrx::Uuid,
    kind: Option<String>,
    bucket: Option<String>,
    from: Option<TimestampWithTimeZone>,
    until: Option<TimestampWithTimeZone>,
    tz: Option<String>,
) -> Request {
    let bad = |m: String| -> ! { error::bad_argument(format!("{what}: {m}")) };
    let kind = kind.unwrap_or_else(|| bad("kind must not be NULL".into()));
    let catalog = super::catalog::current();
    let code = match catalog.resolve_kind(&kind) {
        Some((code, _)) => code.to_string(),
        None => bad(format!("unknown kind \"{kind}\" (see health.metric_kinds)")),
    };
    let bucket = bucket.unwrap_or_else(|| bad("bucket must not be NULL".into()));
    let bucket = Bucket::parse(&bucket)
        .unwrap_or_else(|| bad(format!("bucket must be hour, day, week or month, not \"{bucket}\"")));
    let tz = tz.unwrap_or_else(|| bad("tz must not be NULL".into()));
    if !zone_exists(&tz) {
        bad(format!("unknown time zone \"{tz}\" (an IANA name such as Europe/Berlin or America/New_York)"));
    }
    if let (Some(f), Some(u)) = (from, until) {
        if f > u {
            bad("from > until".into());
        }
    }
    Request { user, kind: code, bucket, tz, from, until }
}

/// Is `tz` a time zone of Postgres's IANA database? (Looked up by name only, as `date_trunc` does;
/// a name that is not a zone is simply not found.)
fn zone_exists(tz: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(tz) else { return false };
    // SAFETY: pg_tzset reads a NUL-terminated name and returns a pointer into its own cache of
    // loaded zones, or NULL when no zone has that name (or the name is too long). Nothing is kept.
    !unsafe { pgrx::pg_sys::pg_tzset(name.as_ptr()) }.is_null()
}

/// Adds `table`'s buckets for `request` to `into`. `extra` is a further condition (the grantee's
/// shares) with its arguments numbered from $7.
pub fn aggregate(
    table: &str,
    request: &Request,
    extra: &str,
    extra_args: Vec<DatumWithOid<'static>>,
    into: &mut Buckets,
) {
    let condition = if extra.is_empty() { String::new() } else { format!(" AND ({extra})") };
    let sql = format!(
        "SELECT pg_catalog.date_trunc($2, recorded_at, $3), pg_catalog.count(*)::pg_catalog.int8, \
                pg_catalog.min(value::pg_catalog.float8), pg_catalog.max(value::pg_catalog.float8), \
                pg_catalog.sum(value::pg_catalog.float8) \
           FROM {table} WHERE user_id OPERATOR(pg_catalog.=) $1 AND kind OPERATOR(pg_catalog.=) $4 \
            AND ($5::pg_catalog.timestamptz IS NULL OR recorded_at OPERATOR(pg_catalog.>=) $5) \
            AND ($6::pg_catalog.timestamptz IS NULL OR recorded_at OPERATOR(pg_catalog.<) $6){condition} \
          GROUP BY 1"
    );
    let mut args: Vec<DatumWithOid> = vec![
        request.user.into(),
        request.bucket.field().into(),
        request.tz.as_str().into(),
        request.kind.as_str().into(),
        request.from.into(),
        request.until.into(),
    ];
    args.extend(extra_args);
    Spi::connect(|c| {
        for r in c.select(&sql, None, &args)? {
            if let Some((start, stats)) = bucket_of(&r)? {
                into.add(start, stats);
            }
        }
        Ok::<_, pgrx::spi::Error>(())
    })
    .unwrap_or_else(|e| error::spi_failed(&format!("summarising {table}"), e));
}

/// A bucket row — start, count, min, max, sum in columns 1 to 5 — as (µs since 2000-01-01 UTC,
/// stats); None when a column is NULL.
pub fn bucket_of(r: &pgrx::spi::SpiHeapTupleData) -> Result<Option<(i64, Stats)>, pgrx::spi::Error> {
    Ok(
        match (
            r.get::<TimestampWithTimeZone>(1)?,
            r.get::<i64>(2)?,
            r.get::<f64>(3)?,
            r.get::<f64>(4)?,
            r.get::<f64>(5)?,
        ) {
            (Some(start), Some(n), Some(min), Some(max), Some(sum)) => {
                Some((start.into_inner(), Stats { n, min, max, sum }))
            }
            _ => None,
        },
    )
}

/// Can the caller (the current user) read `table`? A table it has no right to is not its data.
pub fn readable(table: &str) -> bool {
    crate::pg::spi::select_one::<bool>("SELECT pg_catalog.has_table_privilege($1, 'SELECT')", &[table.into()])
        .unwrap_or(false)
}

#[pg_schema]
mod health {
    use super::*;
    use crate::pg::uuid::to_pg;

    /// The caller's samples of `kind` in `bucket`s of local time in `tz`, recorded in
    /// [from, until): count, min, average, max and sum in the kind's canonical unit. Read with the
    /// caller's rights, under row level security, as a plain query would be. Volatile: it brings
    /// the hourly rollups it reads up to date (src/health/rollup.rs).
    #[allow(clippy::type_complexity)]
    #[pg_extern(volatile, security_definer)]
    fn summary(
        kind: Option<String>,
        bucket: default!(Option<String>, "'day'"),
        from: default!(Option<TimestampWithTimeZone>, "NULL"),
        until: default!(Option<TimestampWithTimeZone>, "NULL"),
        tz: default!(Option<String>, "'UTC'"),
    ) -> TableIterator<
        'static,
        (
            name!(bucket_start, TimestampWithTimeZone),
            name!(n, i64),
            name!(min, f64),
            name!(avg, f64),
            name!(max, f64),
            name!(sum, f64),
        ),
    > {
        let me = crate::health::sharing::caller("health.summary");
        let request = request("health.summary", to_pg(me), kind, bucket, from, until, tz);
        let mut buckets = Buckets::default();
        // The list of tables comes from the registry (readable by the extension owner); every
        // read runs as the caller, so its grants and the tables' policies decide what it sees.
        for table in crate::registry::metric_tables() {
            if !crate::pg::as_caller::as_caller(|| readable(&table.name)) {
                continue;
            }
            if !crate::health::rollup::summarise(&table.name, &request, &mut buckets) {
                crate::pg::as_caller::as_caller(|| aggregate(&table.name, &request, "", Vec::new(), &mut buckets));
            }
        }
        TableIterator::new(rows(buckets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_by_name_only() {
        for (name, b) in
            [("hour", Bucket::Hour), ("day", Bucket::Day), ("week", Bucket::Week), ("month", Bucket::Month)]
        {
            assert_eq!(Bucket::parse(name), Some(b));
            assert_eq!(b.field(), name);
        }
        for name in ["Day", "year", "minute", "", "day;drop table x", "days"] {
            assert_eq!(Bucket::parse(name), None, "{name}");
        }
    }

    #[test]
    fn tables_merge_by_bucket_in_time_order() {
        let mut b = Buckets::default();
        b.add(200, Stats { n: 2, min: 60.0, max: 70.0, sum: 130.0 });
        b.add(100, Stats { n: 1, min: 50.0, max: 50.0, sum: 50.0 });
        b.add(200, Stats { n: 1, min: 55.0, max: 90.0, sum: 90.0 });
        b.add(300, Stats { n: 0, min: 0.0, max: 0.0, sum: 0.0 });
        assert_eq!(b.samples(), 4);
        let rows = b.into_rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], (100, Stats { n: 1, min: 50.0, max: 50.0, sum: 50.0 }));
        assert_eq!(rows[1], (200, Stats { n: 3, min: 55.0, max: 90.0, sum: 220.0 }));
        assert!((rows[1].1.avg() - 220.0 / 3.0).abs() < 1e-12);
    }

    proptest! {
        // Merging per-table partials gives what one pass over all samples gives.
        #[test]
        fn merged_partials_equal_one_pass(samples in prop::collection::vec((0i64..5, 0usize..3, 0.0f64..300.0), 1..200)) {
            let mut merged = Buckets::default();
            for table in 0..3 {
                let mut per: BTreeMap<i64, Stats> = BTreeMap::new();
                for &(bucket, t, v) in &samples {
                    if t != table { continue }
                    per.entry(bucket).and_modify(|s| s.merge(&Stats { n: 1, min: v, max: v, sum: v }))
                        .or_insert(Stats { n: 1, min: v, max: v, sum: v });
                }
                for (bucket, s) in per { merged.add(bucket, s); }
            }
            prop_assert_eq!(merged.samples(), samples.len() as i64);
            for (bucket, s) in merged.into_rows() {
                let vs: Vec<f64> = samples.iter().filter(|x| x.0 == bucket).map(|x| x.2).collect();
                prop_assert_eq!(s.n, vs.len() as i64);
                prop_assert_eq!(s.min, vs.iter().cloned().fold(f64::INFINITY, f64::min));
                prop_assert_eq!(s.max, vs.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
                let sum: f64 = vs.iter().sum();
                prop_assert!((s.sum - sum).abs() <= 1e-9 * sum.abs().max(1.0));
            }
        }
    }
}
