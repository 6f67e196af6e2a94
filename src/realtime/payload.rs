//! Packing a statement's rows into NOTIFY payloads: as few as possible, each under the limit,
//! every id kept (docs/realtime.md). Pure Rust, unit tested below.

use std::borrow::Cow;

/// NOTIFY refuses payloads of 8000 bytes or more; stay clearly below.
pub const PAYLOAD_LIMIT: usize = 7900;

/// Pack JSON `items` into as few payloads as possible, each under `limit` bytes:
/// `{"table":…,"op":…,"part":i,"parts":n,"seq_from":a,"seq_to":b,"rows":[…]}`. `first_seq` is the
/// change-feed seq of the first item (items follow one by one); each part names the seq range of
/// its own rows. An item that cannot fit even alone is replaced by
/// `{"<id_key>":…,"too_large":true}` so its id still travels (never dropped).
pub fn pack_payloads(
    table: &str,
    op: &str,
    items: &[String],
    id_key: &str,
    first_seq: Option<i64>,
    limit: usize,
) -> Vec<String> {
    pack(table, op, items, id_key, first_seq, None, limit)
}

/// `pack_payloads` for rows of another user shared with the listener: `"shared_by":"<owner>"`,
/// no seqs (shared rows are not in the listener's own change feed), and keys only whatever the
/// table's payload mode: a grantee reads values through `health.shared_samples`, which logs the
/// read, never from a notification.
pub fn pack_shared_payloads(
    table: &str,
    op: &str,
    items: &[String],
    id_key: &str,
    owner: &uuid::Uuid,
    limit: usize,
) -> Vec<String> {
    let keys: Vec<String> = items.iter().map(|i| keys_only(i, id_key)).collect();
    pack(table, op, &keys, id_key, None, Some(owner), limit)
}

/// The members of a row item that name it — its id key, `kind` and `recorded_at` — and nothing
/// else (a row-mode item carries every column).
pub fn keys_only(item: &str, id_key: &str) -> String {
    let Ok(serde_json::Value::Object(row)) = serde_json::from_str::<serde_json::Value>(item) else {
        return "{}".to_string();
    };
    let kept: serde_json::Map<String, serde_json::Value> =
        row.into_iter().filter(|(k, _)| k == id_key || k == "kind" || k == "recorded_at").collect();
    serde_json::Value::Object(kept).to_string()
}

fn pack(
    table: &str,
    op: &str,
    items: &[String],
    id_key: &str,
    first_seq: Option<i64>,
    shared_by: Option<&uuid::Uuid>,
    limit: usize,
) -> Vec<String> {
    let shared = shared_by.map(|o| format!("\"shared_by\":\"{o}\",")).unwrap_or_default();
    let head = |part: usize, parts: usize, seq: Option<(i64, i64)>| {
        let seq = seq.map(|(a, b)| format!("\"seq_from\":{a},\"seq_to\":{b},")).unwrap_or_default();
        format!(
            "{{\"table\":{},\"op\":{},\"part\":{part},\"parts\":{parts},{shared}{seq}\"rows\":[",
            serde_json::Value::from(table),
            serde_json::Value::from(op)
        )
    };
    // Room for the envelope with 6-digit part numbers and 19-digit seqs, whatever the final count.
    let widest = first_seq.map(|_| (i64::MAX, i64::MAX));
    let budget = limit.saturating_sub(head(999_999, 999_999, widest).len() + 2);
    let mut groups: Vec<(String, usize)> = Vec::new();
    let mut current = String::new();
    let mut count = 0;
    for item in items {
        let item: Cow<str> = if item.len() > budget { Cow::Owned(shrink(item, id_key)) } else { Cow::Borrowed(item) };
        let extra = item.len() + usize::from(!current.is_empty());
        if !current.is_empty() && current.len() + extra > budget {
            groups.push((std::mem::take(&mut current), std::mem::take(&mut count)));
        }
        if !current.is_empty() {
            current.push(',');
        }
        current.push_str(&item);
        count += 1;
    }
    if !current.is_empty() || groups.is_empty() {
        groups.push((current, count));
    }
    let parts = groups.len();
    let mut next = first_seq;
    groups
        .into_iter()
        .enumerate()
        .map(|(i, (rows, n))| {
            let seq = next.map(|a| (a, a + n as i64 - 1));
            next = next.map(|a| a + n as i64);
            format!("{}{rows}]}}", head(i + 1, parts, seq))
        })
        .collect()
}

fn shrink(item: &str, id_key: &str) -> String {
    let id = serde_json::from_str::<serde_json::Value>(item)
        .ok()
        .and_then(|v| v.get(id_key).cloned())
        .unwrap_or(serde_json::Value::Null);
    serde_json::json!({ id_key: id, "too_large": true }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grantees_get_keys_only_even_from_a_row_mode_table() {
        let row =
            r#"{"id":7,"kind":"heart_rate","recorded_at":"2026-11-24T08:00:00+00:00","value":61,"note":"secret"}"#;
        let p = pack_shared_payloads(
            "public.m",
            "INSERT",
            &[row.to_string()],
            "id",
            &uuid::Uuid::from_u128(1),
            PAYLOAD_LIMIT,
        );
        assert_eq!(p.len(), 1);
        assert!(!p[0].contains("secret") && !p[0].contains("61"), "{}", p[0]);
        assert!(p[0].contains(r#""id":7"#) && p[0].contains("heart_rate") && p[0].contains("2026-11-24T08:00:00"));
    }

    #[test]
    fn payloads_split_under_the_limit_and_keep_every_id() {
        let items: Vec<String> = (0..5000).map(|i| format!("{{\"id\":{i},\"kind\":\"heart_rate\"}}")).collect();
        let payloads = pack_payloads("public.m", "INSERT", &items, "id", Some(101), PAYLOAD_LIMIT);
        assert!(payloads.len() > 1);
        let mut ids = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            assert!(p.len() < 8000, "payload {} is {} bytes", i, p.len());
            let v: serde_json::Value = serde_json::from_str(p).unwrap();
            assert_eq!(v["part"], i + 1);
            assert_eq!(v["parts"], payloads.len());
            let rows = v["rows"].as_array().unwrap().len() as i64;
            assert_eq!(v["seq_from"].as_i64().unwrap(), 101 + ids.len() as i64, "parts continue each other's seqs");
            assert_eq!(v["seq_to"].as_i64().unwrap() - v["seq_from"].as_i64().unwrap() + 1, rows);
            ids.extend(v["rows"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()));
        }
        assert_eq!(ids, (0..5000).collect::<Vec<i64>>());
    }

    #[test]
    fn shared_rows_name_their_owner_and_carry_no_seq() {
        let owner = uuid::Uuid::nil();
        let p = pack_shared_payloads("public.m", "INSERT", &["{\"id\":1}".to_string()], "id", &owner, PAYLOAD_LIMIT);
        assert_eq!(
            p,
            [format!("{{\"table\":\"public.m\",\"op\":\"INSERT\",\"part\":1,\"parts\":1,\"shared_by\":\"{owner}\",\"rows\":[{{\"id\":1}}]}}")]
        );
    }

    #[test]
    fn an_oversized_row_keeps_its_id() {
        let big = format!("{{\"id\":7,\"note\":\"{}\"}}", "x".repeat(9000));
        let p = pack_payloads("t", "INSERT", &[big], "id", None, PAYLOAD_LIMIT);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("\"too_large\":true") && p[0].contains("\"id\":7"));
    }

    #[test]
    fn a_small_statement_is_one_payload() {
        let p = pack_payloads("public.m", "DELETE", &["{\"id\":1}".to_string()], "id", None, PAYLOAD_LIMIT);
        assert_eq!(p, ["{\"table\":\"public.m\",\"op\":\"DELETE\",\"part\":1,\"parts\":1,\"rows\":[{\"id\":1}]}"]);
        let p = pack_payloads("public.m", "DELETE", &["{\"id\":1}".to_string()], "id", Some(42), PAYLOAD_LIMIT);
        assert_eq!(
            p,
            ["{\"table\":\"public.m\",\"op\":\"DELETE\",\"part\":1,\"parts\":1,\"seq_from\":42,\"seq_to\":42,\"rows\":[{\"id\":1}]}"]
        );
    }
}
