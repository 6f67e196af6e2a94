//! Counting per type and the final report: the table, the invariant, the rejection reasons and
//! the machine-readable summary.
use crate::element::Disposition;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Counts of one type (a record type, or a correlation type for correlations).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeCounts {
    /// Top-level records of this type in the file (for a correlation type: correlations).
    pub records: u64,
    /// Elements sent to `health.ingest` and not yet answered.
    pub pending: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub duplicate: u64,
    pub rejected: u64,
    /// Top-level repeats of a child of a correlation that was sent as one element.
    pub part_of_correlation: u64,
    /// The database has no kind for this type: not sent.
    pub unsupported: u64,
    /// Answers with a status this importer does not know, or no answer for a sent element.
    pub other: BTreeMap<String, u64>,
    pub reasons: BTreeMap<String, u64>,
}

impl TypeCounts {
    pub fn supported(&self) -> bool {
        self.unsupported == 0
    }

    pub fn skipped(&self) -> u64 {
        self.part_of_correlation + self.unsupported
    }

    /// inserted + updated + deleted + duplicate + rejected + part-of-correlation
    pub fn accounted(&self) -> u64 {
        self.inserted + self.updated + self.deleted + self.duplicate + self.rejected + self.part_of_correlation
    }

    pub fn balanced(&self) -> bool {
        !self.supported() || self.accounted() == self.records
    }

    fn add(&mut self, o: &TypeCounts) {
        self.records += o.records;
        self.pending += o.pending;
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.deleted += o.deleted;
        self.duplicate += o.duplicate;
        self.rejected += o.rejected;
        self.part_of_correlation += o.part_of_correlation;
        self.unsupported += o.unsupported;
        for (k, v) in &o.other {
            *self.other.entry(k.clone()).or_default() += v;
        }
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub types: BTreeMap<String, TypeCounts>,
    /// Records inside correlations, per type (not counted as records: they travel with their
    /// correlation, or their top-level repeat is what counts).
    pub nested: BTreeMap<String, u64>,
    pub batches: u64,
    pub sent: u64,
}

/// A label for a missing `type` attribute.
fn label(kind: &str) -> &str {
    if kind.is_empty() {
        "(no type)"
    } else {
        kind
    }
}

impl Report {
    fn entry(&mut self, kind: &str) -> &mut TypeCounts {
        let kind = label(kind);
        if !self.types.contains_key(kind) {
            self.types.insert(kind.to_string(), TypeCounts::default());
        }
        self.types.get_mut(kind).expect("just inserted")
    }

    /// One top-level item of pass 2.
    pub fn item(&mut self, kind: &str, d: &Disposition) {
        let c = self.entry(kind);
        c.records += 1;
        match d {
            Disposition::Send(_) => c.pending += 1,
            Disposition::PartOfCorrelation => c.part_of_correlation += 1,
            Disposition::Unsupported => c.unsupported += 1,
        }
    }

    pub fn nested_child(&mut self, kind: &str) {
        *self.nested.entry(label(kind).to_string()).or_default() += 1;
    }

    /// The answer of `health.ingest` for one element of type `kind`.
    pub fn outcome(&mut self, kind: &str, status: &str, error: Option<&str>) {
        let c = self.entry(kind);
        c.pending = c.pending.saturating_sub(1);
        match status {
            "inserted" => c.inserted += 1,
            "updated" => c.updated += 1,
            "deleted" => c.deleted += 1,
            "duplicate" => c.duplicate += 1,
            "rejected" => c.rejected += 1,
            other => *c.other.entry(other.to_string()).or_default() += 1,
        }
        if let Some(e) = error.filter(|e| !e.is_empty()) {
            *c.reasons.entry(e.to_string()).or_default() += 1;
        }
    }

    /// A sent element the database gave no answer for.
    pub fn no_outcome(&mut self, kind: &str) {
        self.outcome(kind, "(no answer)", None);
    }

    pub fn totals(&self) -> TypeCounts {
        let mut t = TypeCounts::default();
        for c in self.types.values() {
            t.add(c);
        }
        t
    }

    /// Supported types whose counts do not add up (should be none).
    pub fn unbalanced(&self) -> Vec<(&str, &TypeCounts)> {
        self.types.iter().filter(|(_, c)| !c.balanced()).map(|(k, c)| (k.as_str(), c)).collect()
    }

    /// (count, type, reason), most frequent first.
    pub fn top_reasons(&self, n: usize) -> Vec<(u64, &str, &str)> {
        let mut all: Vec<(u64, &str, &str)> = self
            .types
            .iter()
            .flat_map(|(k, c)| c.reasons.iter().map(move |(r, n)| (*n, k.as_str(), r.as_str())))
            .collect();
        all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)).then(a.2.cmp(b.2)));
        all.truncate(n);
        all
    }

    /// Rows sorted by record count (descending), then name.
    fn rows(&self) -> Vec<(&str, &TypeCounts)> {
        let mut rows: Vec<(&str, &TypeCounts)> = self.types.iter().map(|(k, c)| (k.as_str(), c)).collect();
        rows.sort_by(|a, b| b.1.records.cmp(&a.1.records).then(a.0.cmp(b.0)));
        rows
    }

    /// The human-readable report printed on stdout.
    pub fn render(&self) -> String {
        const HEAD: [&str; 9] =
            ["type", "records", "inserted", "updated", "deleted", "duplicate", "rejected", "skipped", ""];
        let cells = |name: &str, c: &TypeCounts| -> [String; 9] {
            let note = if c.unsupported > 0 {
                "unsupported type".to_string()
            } else if c.part_of_correlation > 0 {
                format!("{} part of a correlation", c.part_of_correlation)
            } else {
                String::new()
            };
            let note = match c.other.values().sum::<u64>() {
                0 => note,
                n => format!("{note}{}{n} other status", if note.is_empty() { "" } else { "; " }),
            };
            [
                name.to_string(),
                c.records.to_string(),
                c.inserted.to_string(),
                c.updated.to_string(),
                c.deleted.to_string(),
                c.duplicate.to_string(),
                c.rejected.to_string(),
                c.skipped().to_string(),
                note,
            ]
        };
        let totals = self.totals();
        let mut table: Vec<[String; 9]> = vec![HEAD.map(String::from)];
        table.extend(self.rows().into_iter().map(|(k, c)| cells(k, c)));
        let mut total_row = cells("total", &totals);
        total_row[8].clear();
        table.push(total_row);
        let mut width = [0usize; 9];
        for row in &table {
            for (w, cell) in width.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |row: &[String; 9]| -> String {
            let mut s = String::new();
            for (i, cell) in row.iter().enumerate() {
                let pad = width[i].saturating_sub(cell.chars().count());
                match i {
                    0 => s.push_str(&format!("{cell}{}", " ".repeat(pad))),
                    8 => s.push_str(&format!("  {cell}")),
                    _ => s.push_str(&format!(" | {}{cell}", " ".repeat(pad))),
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let rule: usize = width[..8].iter().map(|w| w + 3).sum::<usize>().saturating_sub(3);
        for (i, row) in table.iter().enumerate() {
            if i == table.len() - 1 {
                out.push_str(&"-".repeat(rule));
                out.push('\n');
            }
            out.push_str(&line(row));
            if i == 0 {
                out.push_str(&"-".repeat(rule));
                out.push('\n');
            }
        }
        out.push('\n');
        let supported = self.types.values().filter(|c| c.supported()).count();
        let bad = self.unbalanced();
        if totals.pending > 0 {
            out.push_str(&format!(
                "incomplete: the import stopped with {} sent elements unanswered (not committed); \
                 the counts above are what was read so far\n",
                totals.pending
            ));
        } else if bad.is_empty() {
            out.push_str(&format!(
                "check: inserted + updated + deleted + duplicate + rejected + part-of-correlation = records \
                 for all {supported} supported types: OK\n"
            ));
        } else {
            out.push_str(
                "check FAILED: inserted + updated + deleted + duplicate + rejected + part-of-correlation != records:\n",
            );
            for (k, c) in &bad {
                out.push_str(&format!("  {k}: {} accounted of {} records\n", c.accounted(), c.records));
            }
        }
        let unsupported_types = self.types.values().filter(|c| !c.supported()).count();
        out.push_str(&format!(
            "skipped: {} top-level repeats of correlation children, {} records of {unsupported_types} unsupported types\n",
            totals.part_of_correlation, totals.unsupported
        ));
        if !self.nested.is_empty() {
            let n: u64 = self.nested.values().sum();
            out.push_str(&format!(
                "records inside correlations (not counted above): {n} of {} types\n",
                self.nested.len()
            ));
        }
        out.push_str(&format!("sent {} elements in {} batches\n", self.sent, self.batches));
        let reasons = self.top_reasons(10);
        if !reasons.is_empty() {
            out.push_str("\ntop rejection reasons:\n");
            for (n, k, r) in reasons {
                out.push_str(&format!("{n:>8}  {k}: {r}\n"));
            }
        }
        out
    }

    /// The summary written by `--json-summary`.
    pub fn to_json(&self, file: &str, seconds: f64) -> Value {
        let counts = |c: &TypeCounts| {
            json!({
                "supported": c.supported(),
                "records": c.records,
                "inserted": c.inserted,
                "updated": c.updated,
                "deleted": c.deleted,
                "duplicate": c.duplicate,
                "rejected": c.rejected,
                "part_of_correlation": c.part_of_correlation,
                "skipped_unsupported": c.unsupported,
                "skipped": c.skipped(),
                "other": c.other,
                "balanced": c.balanced(),
            })
        };
        let mut types = serde_json::Map::new();
        for (k, c) in &self.types {
            let mut v = counts(c);
            v["reasons"] = json!(c.reasons);
            types.insert(k.clone(), v);
        }
        let reasons: Vec<Value> = self
            .top_reasons(usize::MAX)
            .into_iter()
            .map(|(n, k, r)| json!({"type": k, "reason": r, "count": n}))
            .collect();
        let mut totals = counts(&self.totals());
        if let Some(t) = totals.as_object_mut() {
            // Per type only: the totals mix supported and unsupported types.
            t.remove("supported");
            t.remove("balanced");
        }
        json!({
            "file": file,
            "types": types,
            "totals": totals,
            "reasons": reasons,
            "nested_correlation_children": self.nested,
            "invariant_ok": self.unbalanced().is_empty(),
            // false when the import stopped early (a batch failed): the counts are partial.
            "complete": self.totals().pending == 0,
            "batches": self.batches,
            "sent": self.sent,
            "seconds": seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HR: &str = "HKQuantityTypeIdentifierHeartRate";
    const SYS: &str = "HKQuantityTypeIdentifierBloodPressureSystolic";
    const BP: &str = "HKCorrelationTypeIdentifierBloodPressure";

    fn send() -> Disposition {
        Disposition::Send(Value::Null)
    }

    /// A synthetic import: 5 heart rates (3 inserted, 1 duplicate, 1 rejected), 3 systolic (2 top-level
    /// repeats of the one correlation, 1 updated), 1 correlation (deleted), 2 junk records.
    fn synthetic() -> Report {
        let mut r = Report::default();
        for _ in 0..5 {
            r.item(HR, &send());
        }
        r.item(SYS, &Disposition::PartOfCorrelation);
        r.item(SYS, &Disposition::PartOfCorrelation);
        r.item(SYS, &send());
        r.item(BP, &send());
        r.item("c", &Disposition::Unsupported);
        r.item("", &Disposition::Unsupported);
        r.nested_child(SYS);
        r.nested_child("HKQuantityTypeIdentifierBloodPressureDiastolic");
        r.sent = 7;
        r.batches = 2;
        for _ in 0..3 {
            r.outcome(HR, "inserted", None);
        }
        r.outcome(HR, "duplicate", None);
        r.outcome(HR, "rejected", Some("value 400 /min out of range [20, 300]"));
        r.outcome(SYS, "updated", None);
        r.outcome(BP, "deleted", None);
        r
    }

    #[test]
    fn invariant_holds_on_a_complete_result() {
        let r = synthetic();
        assert!(r.unbalanced().is_empty(), "{:?}", r.unbalanced());
        let hr = &r.types[HR];
        assert_eq!((hr.records, hr.inserted, hr.duplicate, hr.rejected, hr.pending), (5, 3, 1, 1, 0));
        let sys = &r.types[SYS];
        assert_eq!((sys.records, sys.updated, sys.part_of_correlation, sys.skipped()), (3, 1, 2, 2));
        assert_eq!(sys.accounted(), sys.records);
        assert_eq!(r.types[BP].deleted, 1);
        assert!(!r.types["c"].supported() && r.types["c"].balanced());
        assert!(r.types.contains_key("(no type)"));
        let t = r.totals();
        assert_eq!(
            (
                t.records,
                t.inserted,
                t.updated,
                t.deleted,
                t.duplicate,
                t.rejected,
                t.part_of_correlation,
                t.unsupported
            ),
            (11, 3, 1, 1, 1, 1, 2, 2)
        );
        // Over all supported types the sum holds too.
        assert_eq!(t.accounted() + t.unsupported, t.records);
    }

    #[test]
    fn invariant_fails_on_a_missing_or_unknown_answer() {
        let mut r = synthetic();
        r.item(HR, &send());
        assert_eq!(r.unbalanced().len(), 1);
        r.no_outcome(HR);
        assert_eq!(r.unbalanced().len(), 1, "an element without an answer is not accounted");
        assert_eq!(r.types[HR].other["(no answer)"], 1);
        let mut r = synthetic();
        r.item(BP, &send());
        r.outcome(BP, "merged", None);
        assert_eq!(r.unbalanced()[0].0, BP);
        assert!(r.render().contains("check FAILED"), "{}", r.render());
        assert_eq!(r.to_json("f", 0.0)["invariant_ok"], json!(false));
    }

    #[test]
    fn an_interrupted_import_says_so() {
        let mut r = synthetic();
        r.item(HR, &send());
        let text = r.render();
        assert!(text.contains("incomplete: the import stopped with 1 sent elements unanswered"), "{text}");
        assert!(!text.contains("check"), "{text}");
        assert_eq!(r.to_json("f", 0.0)["complete"], json!(false));
    }

    #[test]
    fn report_text() {
        let text = synthetic().render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("type"), "{text}");
        for h in ["records", "inserted", "updated", "deleted", "duplicate", "rejected", "skipped"] {
            assert!(lines[0].contains(h), "{text}");
        }
        // Sorted by records: heart rate first.
        assert!(lines[2].starts_with(HR), "{text}");
        let total = lines.iter().find(|l| l.starts_with("total")).unwrap();
        let cols: Vec<&str> = total.split('|').map(str::trim).collect();
        assert_eq!(cols, ["total", "11", "3", "1", "1", "1", "1", "4"], "{text}");
        assert!(text.contains("for all 3 supported types: OK"), "{text}");
        assert!(text.contains("2 part of a correlation"), "{text}");
        assert!(text.contains("unsupported type"), "{text}");
        assert!(text.contains("2 top-level repeats of correlation children, 2 records of 2 unsupported types"));
        assert!(text.contains("records inside correlations (not counted above): 2 of 2 types"), "{text}");
        assert!(text.contains("top rejection reasons:"), "{text}");
        assert!(text.contains(&format!("       1  {HR}: value 400 /min out of range [20, 300]")), "{text}");
    }

    #[test]
    fn reasons_are_ranked() {
        let mut r = Report::default();
        for (kind, reason, n) in [(HR, "b", 1), (HR, "a", 3), (SYS, "a", 2), (SYS, "z", 3)] {
            for _ in 0..n {
                r.item(kind, &send());
                r.outcome(kind, "rejected", Some(reason));
            }
        }
        r.outcome(HR, "inserted", Some(""));
        // Ties: by type, then reason.
        assert_eq!(r.top_reasons(3), vec![(3, SYS, "z"), (3, HR, "a"), (2, SYS, "a")]);
    }

    #[test]
    fn json_summary() {
        let j = synthetic().to_json("export.xml", 1.5);
        assert_eq!(j["file"], json!("export.xml"));
        assert_eq!(j["invariant_ok"], json!(true));
        assert_eq!(j["complete"], json!(true));
        assert_eq!(j["types"][HR]["records"], json!(5));
        assert_eq!(j["types"][HR]["reasons"]["value 400 /min out of range [20, 300]"], json!(1));
        assert_eq!(j["types"][SYS]["part_of_correlation"], json!(2));
        assert_eq!(j["types"]["c"]["skipped_unsupported"], json!(1));
        assert_eq!(j["types"]["c"]["supported"], json!(false));
        assert_eq!(j["totals"]["records"], json!(11));
        assert!(j["totals"].get("supported").is_none());
        assert_eq!(j["reasons"][0]["count"], json!(1));
        assert_eq!(j["nested_correlation_children"][SYS], json!(1));
        assert_eq!(j["sent"], json!(7));
    }
}
