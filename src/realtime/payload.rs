//! Packing a statement's rows into NOTIFY payloads: as few as possible, each under the limit,
//! every id kept (docs/realtime.md). Pure Rust, unit tested below.

use std::borrow::Cow;

/// NOTIFY refuses payloads of 8000 bytes or more; stay clearly below.
pub const PAYLOAD_LIMIT: usize = 7900;

/// Pack JSON `items` into as few payloads as possible, each under `limit` bytes:
/// `{"table":…,"op":…,"part":i,"parts":n,"rows":[…]}`. An item that cannot fit even alone is
/// replaced by `{"<id_key>":…,"too_large":true}` so its id still travels (never dropped).
pub fn pack_payloads(table: &str, op: &str, items: &[String], id_key: &str, limit: usize) -> Vec<String> {
    let head = |part: usize, parts: usize| {
        format!(
            "{{\"table\":{},\"op\":{},\"part\":{part},\"parts\":{parts},\"rows\":[",
            serde_json::Value::from(table),
            serde_json::Value::from(op)
        )
    };
    // Room for the envelope with 6-digit part numbers, whatever the final count.
    let budget = limit.saturating_sub(head(999_999, 999_999).len() + 2);
    let mut groups: Vec<String> = Vec::new();
    let mut current = String::new();
    for item in items {
        let item: Cow<str> = if item.len() > budget { Cow::Owned(shrink(item, id_key)) } else { Cow::Borrowed(item) };
        let extra = item.len() + usize::from(!current.is_empty());
        if !current.is_empty() && current.len() + extra > budget {
            groups.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(',');
        }
        current.push_str(&item);
    }
    if !current.is_empty() || groups.is_empty() {
        groups.push(current);
    }
    let parts = groups.len();
    groups.into_iter().enumerate().map(|(i, rows)| format!("{}{rows}]}}", head(i + 1, parts))).collect()
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
    fn payloads_split_under_the_limit_and_keep_every_id() {
        let items: Vec<String> = (0..5000).map(|i| format!("{{\"id\":{i},\"kind\":\"heart_rate\"}}")).collect();
        let payloads = pack_payloads("public.m", "INSERT", &items, "id", PAYLOAD_LIMIT);
        assert!(payloads.len() > 1);
        let mut ids = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            assert!(p.len() < 8000, "payload {} is {} bytes", i, p.len());
            let v: serde_json::Value = serde_json::from_str(p).unwrap();
            assert_eq!(v["part"], i + 1);
            assert_eq!(v["parts"], payloads.len());
            ids.extend(v["rows"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()));
        }
        assert_eq!(ids, (0..5000).collect::<Vec<i64>>());
    }

    #[test]
    fn an_oversized_row_keeps_its_id() {
        let big = format!("{{\"id\":7,\"note\":\"{}\"}}", "x".repeat(9000));
        let p = pack_payloads("t", "INSERT", &[big], "id", PAYLOAD_LIMIT);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("\"too_large\":true") && p[0].contains("\"id\":7"));
    }

    #[test]
    fn a_small_statement_is_one_payload() {
        let p = pack_payloads("public.m", "DELETE", &["{\"id\":1}".to_string()], "id", PAYLOAD_LIMIT);
        assert_eq!(p, ["{\"table\":\"public.m\",\"op\":\"DELETE\",\"part\":1,\"parts\":1,\"rows\":[{\"id\":1}]}"]);
    }
}
