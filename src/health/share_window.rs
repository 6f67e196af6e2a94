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
