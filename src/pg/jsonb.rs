//! A `jsonb` argument read from its binary form into a serde value.
//!
//! pgrx's `JsonB` prints the jsonb as text (`jsonb_out`) and parses that text again with serde:
//! for a 10,000-sample `health.ingest` batch that is ~10 ms of a ~130 ms call. Walking the jsonb
//! with Postgres's own iterator builds the same value directly. Numbers go through `numeric_out`,
//! exactly the text `jsonb_out` prints for them, so a value is the same either way (the pg_test
//! below compares the two on every kind of JSON value).
use pgrx::callconv::{Arg, ArgAbi};
use pgrx::pg_sys;
use pgrx::FromDatum;
use serde_json::{Map, Number, Value};

/// A `jsonb` argument as a serde value (SQL type `jsonb`).
pub struct JsonbArg(pub Value);

impl FromDatum for JsonbArg {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        // SAFETY: pgrx hands us a non-null datum of the argument's type, jsonb.
        (!is_null).then(|| JsonbArg(unsafe { to_value(datum) }))
    }
}

// SAFETY: the argument is declared jsonb (SqlTranslatable below), and FromDatum reads a jsonb.
unsafe impl<'fcx> ArgAbi<'fcx> for JsonbArg {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        // SAFETY: called only for a non-null argument of this type (ArgAbi's contract).
        unsafe { arg.unbox_arg_using_from_datum() }.unwrap_or(JsonbArg(Value::Null))
    }
}

pgrx::impl_sql_translatable!(JsonbArg, "jsonb");

enum Open {
    Array { items: Vec<Value>, raw_scalar: bool },
    Object { members: Map<String, Value>, key: Option<String> },
}

/// The serde value of a jsonb datum.
/// # Safety
/// `datum` must be a non-null jsonb datum.
pub unsafe fn to_value(datum: pg_sys::Datum) -> Value {
    use pg_sys::JsonbIteratorToken::*;
    // SAFETY: a jsonb datum is a varlena; detoasting gives a (possibly new) flat copy that lives
    // in the current memory context for the rest of this call. The iterator reads only it, and
    // each JsonbValue it fills is read before the next call.
    unsafe {
        let jb = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::Jsonb;
        let mut it = pg_sys::JsonbIteratorInit(&mut (*jb).root);
        let mut v: pg_sys::JsonbValue = std::mem::zeroed();
        let mut open: Vec<Open> = Vec::new();
        loop {
            let done = match pg_sys::JsonbIteratorNext(&mut it, &mut v, false) {
                WJB_BEGIN_ARRAY => {
                    let n = usize::try_from(v.val.array.nElems).unwrap_or(0);
                    open.push(Open::Array { items: Vec::with_capacity(n), raw_scalar: v.val.array.rawScalar });
                    None
                }
                WJB_BEGIN_OBJECT => {
                    open.push(Open::Object { members: Map::new(), key: None });
                    None
                }
                WJB_KEY => {
                    if let Some(Open::Object { key, .. }) = open.last_mut() {
                        *key = Some(string(&v));
                    }
                    None
                }
                WJB_VALUE | WJB_ELEM => add(&mut open, scalar(&v)),
                WJB_END_ARRAY => match open.pop() {
                    Some(Open::Array { mut items, raw_scalar: true }) if items.len() == 1 => {
                        add(&mut open, items.pop().unwrap_or(Value::Null))
                    }
                    Some(Open::Array { items, .. }) => add(&mut open, Value::Array(items)),
                    _ => None,
                },
                WJB_END_OBJECT => match open.pop() {
                    Some(Open::Object { members, .. }) => add(&mut open, Value::Object(members)),
                    _ => None,
                },
                _ => break Value::Null, // WJB_DONE before the top level closed: nothing there
            };
            if let Some(top) = done {
                break top;
            }
        }
    }
}

/// Put `value` into the innermost open container; the value itself when none is open (the top).
fn add(open: &mut [Open], value: Value) -> Option<Value> {
    match open.last_mut() {
        None => Some(value),
        Some(Open::Array { items, .. }) => {
            items.push(value);
            None
        }
        Some(Open::Object { members, key }) => {
            members.insert(key.take().unwrap_or_default(), value);
            None
        }
    }
}

/// # Safety
/// `v` must be a string JsonbValue the iterator just filled.
unsafe fn string(v: &pg_sys::JsonbValue) -> String {
    // SAFETY: a jbvString's val/len describe bytes inside the detoasted jsonb.
    unsafe {
        let len = usize::try_from(v.val.string.len).unwrap_or(0);
        let bytes = std::slice::from_raw_parts(v.val.string.val as *const u8, len);
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// # Safety
/// `v` must be a scalar JsonbValue the iterator just filled.
unsafe fn scalar(v: &pg_sys::JsonbValue) -> Value {
    // SAFETY: the union member read is the one `type_` names.
    unsafe {
        match v.type_ {
            pg_sys::jbvType::jbvNull => Value::Null,
            pg_sys::jbvType::jbvBool => Value::Bool(v.val.boolean),
            pg_sys::jbvType::jbvString => Value::String(string(v)),
            pg_sys::jbvType::jbvNumeric => {
                let text = pgrx::direct_function_call::<&core::ffi::CStr>(
                    pg_sys::numeric_out,
                    &[Some(pg_sys::Datum::from(v.val.numeric))],
                );
                let number = text.and_then(|t| t.to_str().ok()).and_then(|t| t.parse::<Number>().ok());
                number.map(Value::Number).unwrap_or(Value::Null)
            }
            _ => Value::Null,
        }
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn jsonb_read_from_its_binary_form_equals_its_text_read() {
        let cases = [
            r#"[{"kind": "heart_rate", "value": 61, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z"}]"#,
            r#"{"a": [1, -2.5, 0.000001, 1e300, 12345678901234567890, 123.4500, -0], "b": {"c": null, "d": true, "e": false}}"#,
            r#"["", "tab\tquote\"backslash\\", "ünïcödé ✓ 😀", "\u0001"]"#,
            r#"[[], {}, [[]], {"x": {}}]"#,
            r#""a raw string""#,
            "42",
            "null",
            "true",
            r#"{"dup": 1, "dup": 2}"#,
        ];
        for case in cases {
            let via_text =
                Spi::get_one_with_args::<pgrx::JsonB>("SELECT $1::jsonb", &[case.into()]).unwrap().unwrap().0;
            let via_binary = Spi::connect(|c| {
                let row = c.select("SELECT $1::jsonb", None, &[case.into()]).unwrap().first();
                let datum = row.get_datum_by_ordinal(1).unwrap().unwrap();
                // SAFETY: a non-null jsonb datum, read while the SPI connection holds it.
                unsafe { super::to_value(datum) }
            });
            assert_eq!(via_binary, via_text, "{case}");
        }
    }
}
