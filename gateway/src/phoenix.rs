//! The Phoenix channels protocol as realtime-js speaks it (serializer 2.0.0), and the part of
//! Supabase Realtime's `postgres_changes` that is pure: frames, bindings, filters, event payloads.
//! No I/O here; `realtime_v1` drives it over a WebSocket.
//!
//! A frame is a JSON array `[join_ref, ref, topic, event, payload]`. The client joins a topic
//! (`realtime:<name>`) with `phx_join`, whose payload carries `config.postgres_changes` (the
//! bindings) and `access_token`; the server answers `phx_reply` with the bindings echoed, each
//! with an id, and later pushes `postgres_changes` events naming the ids of the bindings that
//! match.
use serde_json::{json, Map, Value};

/// One decoded frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub join_ref: Option<String>,
    pub msg_ref: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Value,
}

/// A text frame as realtime-js sends it; Err names what is wrong (never echoes the input).
pub fn decode(text: &str) -> Result<Frame, &'static str> {
    let v: Value = serde_json::from_str(text).map_err(|_| "a frame must be JSON")?;
    let Value::Array(parts) = v else { return Err("a frame must be a JSON array") };
    let [join_ref, msg_ref, topic, event, payload]: [Value; 5] =
        parts.try_into().map_err(|_| "a frame has five members: join_ref, ref, topic, event, payload")?;
    let opt = |v: Value| match v {
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Null => Ok(None),
        _ => Err("join_ref and ref are strings or null"),
    };
    let (Value::String(topic), Value::String(event)) = (topic, event) else {
        return Err("topic and event are strings");
    };
    Ok(Frame { join_ref: opt(join_ref)?, msg_ref: opt(msg_ref)?, topic, event, payload })
}

/// A frame as text.
pub fn encode(join_ref: Option<&str>, msg_ref: Option<&str>, topic: &str, event: &str, payload: &Value) -> String {
    json!([join_ref, msg_ref, topic, event, payload]).to_string()
}

/// `phx_reply` to `to` with status ok.
pub fn reply_ok(to: &Frame, response: Value) -> String {
    let payload = json!({"status": "ok", "response": response});
    encode(to.join_ref.as_deref(), to.msg_ref.as_deref(), &to.topic, "phx_reply", &payload)
}

/// `phx_reply` to `to` with status error and a reason a person can read.
pub fn reply_error(to: &Frame, reason: &str) -> String {
    let payload = json!({"status": "error", "response": {"reason": reason}});
    encode(to.join_ref.as_deref(), to.msg_ref.as_deref(), &to.topic, "phx_reply", &payload)
}

/// A `system` message on a channel, as Supabase Realtime sends them.
pub fn system(join_ref: Option<&str>, topic: &str, extension: &str, status: &str, message: &str) -> String {
    let channel = topic.strip_prefix("realtime:").unwrap_or(topic);
    let payload = json!({"extension": extension, "status": status, "message": message, "channel": channel});
    encode(join_ref, None, topic, "system", &payload)
}

/// The server closing a channel (the client stops hearing it and does not rejoin).
pub fn close(join_ref: Option<&str>, topic: &str) -> String {
    encode(join_ref, None, topic, "phx_close", &json!({}))
}

/// A filter's comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
}

/// `column=op.value` (`in.(a,b,"c d")` for `in`), as realtime-js passes a binding's `filter`.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    pub column: String,
    pub op: Op,
    pub values: Vec<String>,
}

/// Parses a binding's filter; Err says what form is expected.
pub fn parse_filter(text: &str) -> Result<Filter, &'static str> {
    const FORM: &str = "a filter is column=op.value with op one of eq, neq, lt, lte, gt, gte, in";
    let (column, rest) = text.split_once('=').ok_or(FORM)?;
    let (op, value) = rest.split_once('.').ok_or(FORM)?;
    if column.is_empty() {
        return Err(FORM);
    }
    let op = match op {
        "eq" => Op::Eq,
        "neq" => Op::Neq,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "in" => Op::In,
        _ => return Err(FORM),
    };
    let values = if op == Op::In {
        let inner = value
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .ok_or("an in filter lists its values in parentheses: column=in.(a,b)")?;
        split_list(inner)
    } else {
        vec![value.to_string()]
    };
    Ok(Filter { column: column.to_string(), op, values })
}

/// `a,b,"c,d"` → [a, b, c,d] (double quotes keep commas; `\"` inside them is a quote).
fn split_list(inner: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut chars) = (Vec::new(), String::new(), false, inner.chars());
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => cur.extend(chars.next()),
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

impl Filter {
    /// Whether `record` passes. A record without the column does not; numbers compare as
    /// numbers, everything else as its text (so ISO timestamps of one zone order correctly).
    pub fn matches(&self, record: &Map<String, Value>) -> bool {
        let Some(v) = record.get(&self.column) else { return false };
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Null => "null".to_string(),
            other => other.to_string(),
        };
        let cmp = |want: &str| -> Option<std::cmp::Ordering> {
            match (v.as_f64(), want.parse::<f64>()) {
                (Some(a), Ok(b)) => a.partial_cmp(&b),
                _ => Some(text.as_str().cmp(want)),
            }
        };
        use std::cmp::Ordering::*;
        let want = self.values.first().map(String::as_str).unwrap_or("");
        match self.op {
            Op::Eq => cmp(want) == Some(Equal),
            Op::Neq => cmp(want).is_some_and(|o| o != Equal),
            Op::Lt => cmp(want) == Some(Less),
            Op::Lte => matches!(cmp(want), Some(Less | Equal)),
            Op::Gt => cmp(want) == Some(Greater),
            Op::Gte => matches!(cmp(want), Some(Greater | Equal)),
            Op::In => self.values.iter().any(|w| cmp(w) == Some(Equal)),
        }
    }
}

/// One `postgres_changes` binding of a joined channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub id: u64,
    /// `*`, `INSERT`, `UPDATE` or `DELETE`, as the client wrote it (echoed verbatim: realtime-js
    /// compares the echo with what it sent).
    pub event: String,
    pub schema: String,
    pub table: Option<String>,
    pub filter_text: Option<String>,
    pub filter: Option<Filter>,
}

/// The bindings of a `phx_join` payload's `config.postgres_changes`, numbered from `next_id`.
pub fn bindings(join_payload: &Value, next_id: &mut u64) -> Result<Vec<Binding>, String> {
    let Some(list) = join_payload.pointer("/config/postgres_changes") else { return Ok(Vec::new()) };
    let Value::Array(list) = list else { return Err("config.postgres_changes must be a list".into()) };
    let mut out = Vec::with_capacity(list.len());
    for b in list {
        let text = |k: &str| b.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let event = text("event").unwrap_or_else(|| "*".into());
        if !["*", "INSERT", "UPDATE", "DELETE"].contains(&event.to_ascii_uppercase().as_str()) {
            return Err(format!("unknown postgres_changes event {event:?}: use *, INSERT, UPDATE or DELETE"));
        }
        let filter_text = text("filter");
        let filter = match &filter_text {
            Some(f) => Some(parse_filter(f).map_err(str::to_string)?),
            None => None,
        };
        *next_id += 1;
        out.push(Binding {
            id: *next_id,
            event,
            schema: text("schema").unwrap_or_else(|| "public".into()),
            table: text("table"),
            filter_text,
            filter,
        });
    }
    Ok(out)
}

impl Binding {
    /// How the join reply names this binding (realtime-js matches it field by field).
    pub fn echo(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("event".into(), json!(self.event));
        m.insert("schema".into(), json!(self.schema));
        if let Some(t) = &self.table {
            m.insert("table".into(), json!(t));
        }
        if let Some(f) = &self.filter_text {
            m.insert("filter".into(), json!(f));
        }
        Value::Object(m)
    }

    /// Whether a change of `op` to `schema.table` is for this binding (before its filter).
    pub fn hears(&self, schema: &str, table: &str, op: &str) -> bool {
        (self.schema == "*" || self.schema == schema)
            && self.table.as_deref().is_none_or(|t| t == "*" || t == table)
            && (self.event == "*" || self.event.eq_ignore_ascii_case(op))
    }
}

/// A change as realtime-js receives it: `{ids, data: {schema, table, commit_timestamp, type,
/// columns, record, old_record, errors}}`; `record` for INSERT and UPDATE, `old_record` for
/// UPDATE and DELETE.
pub struct Change<'a> {
    pub schema: &'a str,
    pub table: &'a str,
    pub op: &'a str,
    pub commit_timestamp: &'a str,
    pub columns: &'a Value,
    pub record: Option<&'a Value>,
    pub old_record: Option<&'a Value>,
    pub errors: Option<Vec<String>>,
}

pub fn change_event(join_ref: Option<&str>, topic: &str, ids: &[u64], c: &Change) -> String {
    let mut data = Map::new();
    data.insert("schema".into(), json!(c.schema));
    data.insert("table".into(), json!(c.table));
    data.insert("commit_timestamp".into(), json!(c.commit_timestamp));
    data.insert("type".into(), json!(c.op));
    data.insert("columns".into(), c.columns.clone());
    if let Some(r) = c.record {
        data.insert("record".into(), r.clone());
    }
    if let Some(r) = c.old_record {
        data.insert("old_record".into(), r.clone());
    }
    data.insert("errors".into(), json!(c.errors));
    encode(join_ref, None, topic, "postgres_changes", &json!({"ids": ids, "data": data}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip() {
        let f = decode(r#"["1","2","realtime:room","phx_join",{"config":{}}]"#).unwrap();
        assert_eq!(f.join_ref.as_deref(), Some("1"));
        assert_eq!(f.msg_ref.as_deref(), Some("2"));
        assert_eq!((f.topic.as_str(), f.event.as_str()), ("realtime:room", "phx_join"));
        let hb = decode(r#"[null,"7","phoenix","heartbeat",{}]"#).unwrap();
        assert_eq!(hb.join_ref, None);
        assert_eq!(reply_ok(&hb, json!({})), r#"[null,"7","phoenix","phx_reply",{"response":{},"status":"ok"}]"#);
        assert!(decode("[1,2,3]").is_err());
        assert!(decode(r#"{"topic":"x"}"#).is_err());
        assert!(decode(r#"[null,null,1,"e",{}]"#).is_err());
    }

    #[test]
    fn filters_parse_and_match() {
        let f = parse_filter("user_id=eq.0b4f").unwrap();
        assert_eq!((f.column.as_str(), f.op, f.values.clone()), ("user_id", Op::Eq, vec!["0b4f".to_string()]));
        let rec = |v: Value| v.as_object().unwrap().clone();
        assert!(f.matches(&rec(json!({"user_id": "0b4f"}))));
        assert!(!f.matches(&rec(json!({"user_id": "other"}))));
        assert!(!f.matches(&rec(json!({"id": 1}))), "a record without the column does not match");
        let gt = parse_filter("value=gt.100").unwrap();
        assert!(gt.matches(&rec(json!({"value": 120.5}))));
        assert!(!gt.matches(&rec(json!({"value": 99}))), "numbers compare as numbers, not text");
        let within = parse_filter(r#"kind=in.(heart_rate,"a,b")"#).unwrap();
        assert_eq!(within.values, vec!["heart_rate".to_string(), "a,b".to_string()]);
        assert!(within.matches(&rec(json!({"kind": "a,b"}))));
        assert!(parse_filter("value=like.x").is_err());
        assert!(parse_filter("=eq.1").is_err());
        assert!(parse_filter("kind=in.a,b").is_err());
    }

    #[test]
    fn bindings_echo_what_the_client_sent() {
        let mut id = 0;
        let b = bindings(
            &json!({"config": {"postgres_changes": [
                {"event": "INSERT", "schema": "public", "table": "health_metrics", "filter": "kind=eq.heart_rate"},
                {"event": "*", "schema": "public"}]}}),
            &mut id,
        )
        .unwrap();
        assert_eq!(
            b[0].echo(),
            json!({"id": 1, "event": "INSERT", "schema": "public", "table": "health_metrics", "filter": "kind=eq.heart_rate"})
        );
        assert_eq!(b[1].echo(), json!({"id": 2, "event": "*", "schema": "public"}));
        assert!(b[0].hears("public", "health_metrics", "INSERT"));
        assert!(!b[0].hears("public", "health_metrics", "DELETE"));
        assert!(!b[0].hears("health", "health_metrics", "INSERT"));
        assert!(b[1].hears("public", "anything", "DELETE"));
        assert!(bindings(&json!({"config": {"postgres_changes": [{"event": "TRUNCATE"}]}}), &mut id).is_err());
        assert!(bindings(&json!({"config": {"postgres_changes": [{"filter": "bad"}]}}), &mut id).is_err());
        assert_eq!(bindings(&json!({"config": {}}), &mut id).unwrap(), vec![]);
    }

    proptest! {
        #[test]
        fn no_input_panics(text in ".{0,200}") {
            let _ = decode(&text);
            if let Ok(f) = parse_filter(&text) {
                let _ = f.matches(&Map::new());
            }
        }
    }
}
