//! Validation of event lines against the versioned JSON Schema in the repo
//! (`schema/sealwatch.event.v1.json`). Formats (`date-time`, ...) are validated, not just annotated.
//!
//! The published schema lets fields it does not list appear (new optional fields within v1 must
//! not break a consumer that validates); the project's own tests are stricter: every object with
//! listed properties allows only those ([`strict`]), so a field the daemon prints must be in the
//! schema before a test passes.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

/// A compiled schema and where it came from.
pub struct Schema {
    validator: jsonschema::Validator,
    origin: String,
}

/// `<repo>/schema/sealwatch.event.v1.json`.
pub fn event_schema_path() -> PathBuf {
    crate::repo_root().join("schema/sealwatch.event.v1.json")
}

/// The event schema, made [`strict`], loaded and compiled once per test process.
pub fn event_schema() -> Result<&'static Schema> {
    static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| Schema::load_strict(&event_schema_path()).map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

/// Checks that `line` is ONE JSON object that validates against the event schema; returns it.
pub fn check_line(line: &str) -> Result<Value> {
    event_schema()?.check_line(line)
}

/// [`check_line`] for test code: panics with the line and every failing pointer.
pub fn assert_valid(line: &str) -> Value {
    match check_line(line) {
        Ok(value) => value,
        Err(e) => panic!("{e:#}"),
    }
}

/// Checks every line, reporting all invalid ones (up to 10 in full) in one error.
pub fn check_lines(lines: &[String]) -> Result<Vec<Value>> {
    let schema = event_schema()?;
    let mut values = Vec::with_capacity(lines.len());
    let mut errors = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        match schema.check_line(line) {
            Ok(value) => values.push(value),
            Err(e) => errors.push(format!("stdout line {}: {e:#}", n + 1)),
        }
    }
    if !errors.is_empty() {
        let shown = errors.len().min(10);
        bail!(
            "{} of {} lines do not validate against {}:\n{}",
            errors.len(),
            lines.len(),
            schema.origin,
            errors[..shown].join("\n")
        );
    }
    Ok(values)
}

/// `schema` with `additionalProperties: false` on every object schema that lists its
/// properties and says nothing about others: the test-only strictness over the published schema.
pub fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let lists_properties =
                map.get("type") == Some(&Value::from("object")) && map.contains_key("properties");
            if lists_properties && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".to_owned(), Value::Bool(false));
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

impl Schema {
    /// Loads and compiles the schema in `path`, made [`strict`].
    pub fn load_strict(path: &Path) -> Result<Schema> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading the event schema {} (the repo must ship it)",
                path.display()
            )
        })?;
        let mut schema: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        strict(&mut schema);
        Schema::from_value(&schema, &format!("{} (strict, tests only)", path.display()))
    }

    /// Compiles `schema`; `origin` names it in error messages.
    pub fn from_value(schema: &Value, origin: &str) -> Result<Schema> {
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(schema)
            .map_err(|e| {
                anyhow!(
                    "{origin} is not a valid JSON Schema: {e} at {}",
                    e.instance_path()
                )
            })?;
        Ok(Schema {
            validator,
            origin: origin.to_owned(),
        })
    }

    /// Checks that `line` is one JSON object on one line and that it validates; returns it.
    pub fn check_line(&self, line: &str) -> Result<Value> {
        if line.contains(['\n', '\r']) {
            bail!("line contains a raw line break: {line:?}");
        }
        let value: Value =
            serde_json::from_str(line).with_context(|| format!("not one JSON value: {line}"))?;
        if !value.is_object() {
            bail!("not a JSON object: {line}");
        }
        let failures: Vec<String> = self
            .validator
            .iter_errors(&value)
            .map(|e| {
                format!(
                    "  at {:?} (schema {}): {e}",
                    e.instance_path().as_str(),
                    e.schema_path()
                )
            })
            .collect();
        if !failures.is_empty() {
            bail!(
                "invalid against {}:\n{}\n  line: {line}",
                self.origin,
                failures.join("\n")
            );
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
    use super::*;

    fn tiny() -> Schema {
        let schema = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["time", "process"],
            "properties": {
                "time": {"type": "string", "format": "date-time"},
                "process": {"type": "object", "properties": {"pid": {"type": "integer", "minimum": 1}}}
            }
        });
        Schema::from_value(&schema, "tiny").unwrap()
    }

    #[test]
    fn accepts_a_valid_line() {
        let v =
            tiny().check_line(r#"{"time":"2026-11-22T13:44:10.123456789Z","process":{"pid":1}}"#);
        assert_eq!(v.unwrap()["process"]["pid"], 1);
    }

    #[test]
    fn names_the_failing_pointer() {
        let err = tiny().check_line(r#"{"time":"2026-11-22T13:44:10Z","process":{"pid":0}}"#);
        let err = format!("{:#}", err.unwrap_err());
        assert!(err.contains("/process/pid"), "{err}");
    }

    #[test]
    fn validates_formats() {
        assert!(tiny()
            .check_line(r#"{"time":"yesterday","process":{}}"#)
            .is_err());
    }

    /// The published schema lets a consumer's validation pass on a field added later; the
    /// tests' strict form rejects a field it does not list, at any depth.
    #[test]
    fn the_published_schema_allows_additions_and_the_tests_do_not() {
        let published: Value =
            serde_json::from_str(&std::fs::read_to_string(event_schema_path()).unwrap()).unwrap();
        let open = Schema::from_value(&published, "published").unwrap();
        let strict = event_schema().unwrap();
        let line = |extra: &str| {
            format!(
                r#"{{"schema":"sealwatch.event/v1","time":"2026-11-22T13:44:10.000000001Z","node":"n","kind":"loss","container":null,"loss":{{"kernel_critical":1,"kernel_bulk":0,"decode":0,"output":0{extra}}}}}"#
            )
        };
        strict.check_line(&line("")).unwrap();
        open.check_line(&line("")).unwrap();
        let added = line(r#","a_field_from_the_future":1"#);
        open.check_line(&added).unwrap();
        let err = format!("{:#}", strict.check_line(&added).unwrap_err());
        assert!(err.contains("a_field_from_the_future"), "{err}");
    }

    #[test]
    fn rejects_two_values_and_non_objects() {
        assert!(tiny()
            .check_line(r#"{"time":"2026-11-22T13:44:10Z","process":{}} {}"#)
            .is_err());
        assert!(tiny().check_line("[]").is_err());
        assert!(tiny().check_line("").is_err());
    }
}
