//! What a grantee may see under its active shares, as SQL: the OR of each share's kinds and data
//! window, AND the grantee's own filters. Pure text and arguments, unit-tested below.
use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};

/// One active share, as stored.
#[derive(Clone, Debug)]
pub struct Share {
    pub id: uuid::Uuid,
    pub kinds: Vec<String>,
    pub from: Option<TimestampWithTimeZone>,
    pub until: Option<TimestampWithTimeZone>,
}

/// A statement argument of the condition. (No PartialEq: comparing timestamps calls into
/// Postgres, which the pure unit tests do not link.)
#[derive(Clone, Debug)]
pub enum Arg {
    Kinds(Vec<String>),
    Time(Option<TimestampWithTimeZone>),
}

impl Arg {
    pub fn into_datum_with_oid(self) -> DatumWithOid<'static> {
        match self {
            Arg::Kinds(k) => k.into(),
            Arg::Time(t) => t.into(),
        }
    }
}

/// The grantee's view: every active share, narrowed by the grantee's own window.
pub struct Grant<'a> {
    shares: &'a [Share],
    from: Option<TimestampWithTimeZone>,
    until: Option<TimestampWithTimeZone>,
}

impl<'a> Grant<'a> {
    /// `kind` is applied by the caller's statement; kept here to say it was considered.
    pub fn new(
        shares: &'a [Share],
        _kind: Option<&str>,
        from: Option<TimestampWithTimeZone>,
        until: Option<TimestampWithTimeZone>,
    ) -> Grant<'a> {
        Grant { shares, from, until }
    }

    /// The condition on `kind`/`recorded_at` with placeholders numbered from `first`, and its
    /// arguments in order. Empty when there is no share (nothing may be read).
    pub fn sql_condition(&self, first: usize) -> (String, Vec<Arg>) {
        if self.shares.is_empty() {
            return (String::new(), Vec::new());
        }
        let mut args = Vec::new();
        let mut n = first;
        let mut next = |a: Arg, args: &mut Vec<Arg>| {
            args.push(a);
            n += 1;
            n - 1
        };
        let per_share: Vec<String> = self
            .shares
            .iter()
            .map(|s| {
                let k = next(Arg::Kinds(s.kinds.clone()), &mut args);
                let f = next(Arg::Time(s.from), &mut args);
                let u = next(Arg::Time(s.until), &mut args);
                format!(
                    "(kind OPERATOR(pg_catalog.=) ANY (${k}::pg_catalog.text[]) \
                     AND (${f}::pg_catalog.timestamptz IS NULL OR recorded_at OPERATOR(pg_catalog.>=) ${f}) \
                     AND (${u}::pg_catalog.timestamptz IS NULL OR recorded_at OPERATOR(pg_catalog.<=) ${u}))"
                )
            })
            .collect();
        let f = next(Arg::Time(self.from), &mut args);
        let u = next(Arg::Time(self.until), &mut args);
        let condition = format!(
            "({}) AND (${f}::pg_catalog.timestamptz IS NULL OR recorded_at OPERATOR(pg_catalog.>=) ${f}) \
             AND (${u}::pg_catalog.timestamptz IS NULL OR recorded_at OPERATOR(pg_catalog.<) ${u})",
            per_share.join(" OR ")
        );
        (condition, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(kinds: &[&str]) -> Share {
        Share { id: uuid::Uuid::nil(), kinds: kinds.iter().map(|k| k.to_string()).collect(), from: None, until: None }
    }

    #[test]
    fn no_share_means_nothing_to_read() {
        let (sql, args) = Grant::new(&[], None, None, None).sql_condition(3);
        assert!(sql.is_empty() && args.is_empty());
    }

    #[test]
    fn each_share_is_its_own_kinds_and_window_and_the_grantees_filters_apply_to_all() {
        let shares = [share(&["heart_rate"]), share(&["steps", "distance"])];
        let (sql, args) = Grant::new(&shares, None, None, None).sql_condition(3);
        assert_eq!(args.len(), 3 * 2 + 2, "kinds, from, until per share; the grantee's from, until");
        assert!(matches!(&args[0], Arg::Kinds(k) if k == &["heart_rate"]));
        assert!(matches!(&args[3], Arg::Kinds(k) if k == &["steps", "distance"]));
        assert!(matches!(&args[1], Arg::Time(None)));
        assert!(sql.contains("ANY ($3::pg_catalog.text[])") && sql.contains("ANY ($6::pg_catalog.text[])"));
        assert!(sql.contains(") OR ("), "shares are alternatives");
        assert!(sql.contains("$9::pg_catalog.timestamptz IS NULL OR recorded_at OPERATOR(pg_catalog.>=) $9"));
        assert!(sql.contains("recorded_at OPERATOR(pg_catalog.<) $10"), "the grantee's until is exclusive");
        assert!(sql.contains("recorded_at OPERATOR(pg_catalog.<=) $5"), "a share's data_until is inclusive");
        let max = sql
            .match_indices('$')
            .map(|(i, _)| {
                sql[i + 1..].chars().take_while(char::is_ascii_digit).collect::<String>().parse::<usize>().unwrap()
            })
            .max();
        assert_eq!(max, Some(10), "placeholders match the arguments");
    }
}

/// A share as the realtime fan-out sees it: times in µs since the epoch.
#[derive(Clone, Debug)]
pub struct LiveShare {
    pub grantee: uuid::Uuid,
    pub kinds: Vec<String>,
    pub from_us: Option<i64>,
    pub until_us: Option<i64>,
}

/// The announced rows (JSON keys with `kind` and `recorded_at`) each grantee may hear about, by
/// the same rule `shared_samples` reads with. Rows without both keys are never shared.
pub fn shared_items(shares: &[LiveShare], items: &[String]) -> Vec<(uuid::Uuid, Vec<String>)> {
    let facts: Vec<Option<(String, i64)>> = items
        .iter()
        .map(|i| {
            let v: serde_json::Value = serde_json::from_str(i).ok()?;
            let kind = v.get("kind")?.as_str()?.to_string();
            let at = super::timestamp::parse(v.get("recorded_at")?.as_str()?)?.unix_us;
            Some((kind, at))
        })
        .collect();
    let mut out: Vec<(uuid::Uuid, Vec<String>)> = Vec::new();
    for share in shares {
        let allowed = |(kind, at): &(String, i64)| {
            share.kinds.iter().any(|k| k == kind)
                && share.from_us.is_none_or(|f| *at >= f)
                && share.until_us.is_none_or(|u| *at <= u)
        };
        let rows: Vec<String> =
            items.iter().zip(&facts).filter(|(_, f)| f.as_ref().is_some_and(allowed)).map(|(i, _)| i.clone()).collect();
        if rows.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(g, _)| *g == share.grantee) {
            Some((_, existing)) => {
                existing.extend(rows.into_iter().filter(|r| !existing.contains(r)).collect::<Vec<_>>())
            }
            None => out.push((share.grantee, rows)),
        }
    }
    out
}

#[cfg(test)]
mod live_tests {
    use super::*;

    #[test]
    fn grantees_hear_only_the_kinds_and_window_they_were_given() {
        let g = uuid::Uuid::from_u128(7);
        let h = uuid::Uuid::from_u128(8);
        let t = |s: &str| crate::health::timestamp::parse(s).unwrap().unix_us;
        let shares = [
            LiveShare {
                grantee: g,
                kinds: vec!["heart_rate".into()],
                from_us: Some(t("2026-11-24T00:00:00Z")),
                until_us: None,
            },
            LiveShare { grantee: h, kinds: vec!["steps".into()], from_us: None, until_us: None },
        ];
        let items = vec![
            r#"{"id":1,"kind":"heart_rate","recorded_at":"2026-11-24T08:00:00+00:00"}"#.to_string(),
            r#"{"id":2,"kind":"heart_rate","recorded_at":"2026-11-20T08:00:00+00:00"}"#.to_string(),
            r#"{"id":3,"kind":"steps","recorded_at":"2026-11-24T08:00:00+00:00"}"#.to_string(),
            r#"{"id":4}"#.to_string(),
        ];
        let out = shared_items(&shares, &items);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], (g, vec![items[0].clone()]), "inside the window and the kinds only");
        assert_eq!(out[1], (h, vec![items[2].clone()]));
        assert!(shared_items(&[], &items).is_empty());
    }
}
