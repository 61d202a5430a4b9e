//! `--data JSON` into the request's bytes, with the field that does not
//! match named in the error.
//!
//! prost-reflect parses protobuf's JSON mapping (field names or their
//! `json_name`, enums by name, 64-bit integers as strings, well-known types)
//! but its errors do not say *where*. So the object is first walked field by
//! field: an unknown key is reported with the fields that exist, and each
//! value is parsed alone (as a one-field object of its message) so that a
//! wrong value is reported under its dotted path.

use prost::Message as _;
use prost_reflect::{DeserializeOptions, DynamicMessage, Kind, MessageDescriptor};
use serde_json::Value;

/// `--data` that does not describe a request message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// Not JSON at all.
    #[error(
        "--data is not JSON: {0}. Give the request message as a JSON object, e.g. --data '{{\"name\": \"lab\"}}'."
    )]
    Syntax(String),
    /// JSON, but not an object.
    #[error("--data must be a JSON object (the request message {message}), not {found}")]
    NotObject {
        /// The request type.
        message: String,
        /// What was given (`an array`, `a string`...).
        found: &'static str,
    },
    /// A key that is no field.
    #[error("--data: {message} has no field {field:?}; its fields are: {}", known.join(", "))]
    UnknownField {
        /// Message type holding the key.
        message: String,
        /// Dotted path of the key.
        field: String,
        /// The fields it does have.
        known: Vec<String>,
    },
    /// A value of the wrong type.
    #[error("--data: field {field} ({expected}): {why}")]
    BadValue {
        /// Dotted path.
        field: String,
        /// The field's protobuf type.
        expected: String,
        /// prost-reflect's message.
        why: String,
    },
}

/// Encodes `data` as a `message`.
pub fn encode(message: &MessageDescriptor, data: &str) -> Result<Vec<u8>, DataError> {
    let value: Value = serde_json::from_str(data).map_err(|e| DataError::Syntax(e.to_string()))?;
    check(message, &value, "")?;
    let msg = parse(message, &value).map_err(|why| DataError::BadValue {
        field: "(message)".to_string(),
        expected: message.full_name().to_string(),
        why,
    })?;
    Ok(msg.encode_to_vec())
}

fn parse(message: &MessageDescriptor, value: &Value) -> Result<DynamicMessage, String> {
    DynamicMessage::deserialize_with_options(
        message.clone(),
        value,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .map_err(|e| e.to_string())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks every key of `value` against `message`, descending into nested
/// messages (not into well-known types, whose JSON has its own shape).
fn check(message: &MessageDescriptor, value: &Value, prefix: &str) -> Result<(), DataError> {
    let Value::Object(fields) = value else {
        return Err(DataError::NotObject {
            message: message.full_name().to_string(),
            found: kind_of(value),
        });
    };
    for (key, v) in fields {
        let path = format!("{prefix}{key}");
        let field = message
            .get_field_by_json_name(key)
            .or_else(|| message.get_field_by_name(key))
            .ok_or_else(|| DataError::UnknownField {
                message: message.full_name().to_string(),
                field: path.clone(),
                known: message.fields().map(|f| f.name().to_string()).collect(),
            })?;
        match field.kind() {
            Kind::Message(sub)
                if !field.is_list()
                    && !field.is_map()
                    && v.is_object()
                    && !sub.full_name().starts_with("google.protobuf.") =>
            {
                check(&sub, v, &format!("{path}."))?;
            }
            kind => {
                let one = Value::Object([(key.clone(), v.clone())].into_iter().collect());
                parse(message, &one).map_err(|why| DataError::BadValue {
                    field: path,
                    expected: type_name(&kind, field.is_list(), field.is_map()),
                    why,
                })?;
            }
        }
    }
    Ok(())
}

fn type_name(kind: &Kind, list: bool, map: bool) -> String {
    let base = match kind {
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => e.full_name().to_string(),
        other => format!("{other:?}").to_lowercase(),
    };
    match (list, map) {
        (true, _) => format!("repeated {base}"),
        (_, true) => "map".to_string(),
        _ => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;

    fn descriptor() -> MessageDescriptor {
        let dir = tempfile::tempdir().unwrap();
        let proto = r#"
syntax = "proto3";
package j;
message Inner { int32 n = 1; }
message Req {
  string name = 1;
  uint32 response_size = 2;
  Inner inner = 3;
  repeated string tags = 4;
}
"#;
        std::fs::write(dir.path().join("j.proto"), proto).unwrap();
        let pool: DescriptorPool =
            super::super::proto::compile(&[dir.path().join("j.proto")], &[]).unwrap();
        pool.get_message_by_name("j.Req").unwrap()
    }

    #[test]
    fn encodes_names_and_json_names() {
        let d = descriptor();
        let a = encode(&d, r#"{"name":"x","response_size":7,"inner":{"n":1}}"#).unwrap();
        let b = encode(&d, r#"{"name":"x","responseSize":7,"inner":{"n":1}}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(&a[..3], b"\x0a\x01x");
        assert!(encode(&d, "{}").unwrap().is_empty());
    }

    #[test]
    fn an_unknown_field_is_named_with_the_known_ones() {
        let e = encode(&descriptor(), r#"{"nme":"x"}"#).unwrap_err();
        assert!(
            matches!(&e, DataError::UnknownField { field, .. } if field == "nme"),
            "{e}"
        );
        assert!(
            e.to_string().contains("name, response_size, inner, tags"),
            "{e}"
        );
        let e = encode(&descriptor(), r#"{"inner":{"m":1}}"#).unwrap_err();
        assert!(
            matches!(&e, DataError::UnknownField { field, message, .. } if field == "inner.m" && message == "j.Inner"),
            "{e}"
        );
    }

    #[test]
    fn a_wrong_value_is_named() {
        let e = encode(&descriptor(), r#"{"name":"ok","response_size":"many"}"#).unwrap_err();
        assert!(
            matches!(&e, DataError::BadValue { field, .. } if field == "response_size"),
            "{e}"
        );
        let e = encode(&descriptor(), r#"{"inner":{"n":"x"}}"#).unwrap_err();
        assert!(
            matches!(&e, DataError::BadValue { field, .. } if field == "inner.n"),
            "{e}"
        );
        let e = encode(&descriptor(), r#"{"tags":"one"}"#).unwrap_err();
        assert!(e.to_string().contains("repeated string"), "{e}");
    }

    #[test]
    fn not_json_or_not_an_object() {
        assert!(matches!(
            encode(&descriptor(), "{name:"),
            Err(DataError::Syntax(_))
        ));
        assert!(matches!(
            encode(&descriptor(), "[1]"),
            Err(DataError::NotObject {
                found: "an array",
                ..
            })
        ));
    }
}
