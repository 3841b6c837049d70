//! Which event lines a responder wants: one filter shared by `replay`, `capture tree` and `tail`
//! (where the daemon applies it before queueing lines for the client).
//!
//! Filters look at the JSON form of a line, so fields added to the schema later (`session.id`)
//! are matched without changing this module. Semantics: a flag given several times matches any
//! of its values; different flags must all match; a line without the field a flag asks about
//! does not match it. Time is `from <= time < to`.
mod time;

use clap::Args;
use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use time::parse_rfc3339;

/// The filter flags, also the JSON a `tail` client sends on connect (unknown keys are refused).
#[derive(Debug, Clone, Default, PartialEq, Eq, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterArgs {
    /// Container: full id, id prefix, or exact name. Repeat for any of several.
    #[arg(long, value_name = "ID|NAME")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub container: Vec<String>,
    /// Kubernetes namespace of the container's pod.
    #[arg(long, value_name = "NAMESPACE")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespace: Vec<String>,
    /// Container image, exact or as a glob (`'registry.example/app:*'`).
    #[arg(long, value_name = "IMAGE|GLOB")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image: Vec<String>,
    /// Violation rule id (e.g. `root-in-container`); only violation lines match.
    #[arg(long, value_name = "RULE")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule: Vec<String>,
    /// Line kind (`exec`, `loss`, ...).
    #[arg(long, value_name = "KIND")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kind: Vec<String>,
    /// Process id (`process.pid`).
    #[arg(long, value_name = "PID")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pid: Vec<u32>,
    /// Session id: `session.id`; on lines without a `session` object, the audit session id
    /// `process.sessionid`.
    #[arg(long, value_name = "SESSION")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub session: Vec<String>,
    /// Only lines at or after this time (RFC 3339, e.g. 2026-11-28T13:44:10Z or with +02:00).
    #[arg(long, value_name = "TIME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Only lines before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("--image {glob:?}: {reason}")]
    Glob { glob: String, reason: String },
    #[error("--{flag}: {reason}")]
    Time { flag: &'static str, reason: String },
    #[error("--rule {0:?} is not a rule id (see `sealwatch policy default`)")]
    Rule(String),
    #[error("--from is not before --to")]
    EmptyRange,
}

/// A compiled [`FilterArgs`].
#[derive(Debug, Clone, Default)]
pub struct Filter {
    args: FilterArgs,
    images: Vec<GlobMatcher>,
    from: Option<i128>,
    to: Option<i128>,
}

impl Filter {
    pub fn compile(args: &FilterArgs) -> Result<Filter, FilterError> {
        let images = args
            .image
            .iter()
            .map(|glob| {
                Glob::new(glob)
                    .map(|g| g.compile_matcher())
                    .map_err(|err| FilterError::Glob {
                        glob: glob.clone(),
                        reason: err.kind().to_string(),
                    })
            })
            .collect::<Result<_, _>>()?;
        if let Some(bad) = args
            .rule
            .iter()
            .find(|r| crate::policy::RuleId::from_name(r).is_none())
        {
            return Err(FilterError::Rule(bad.clone()));
        }
        let time = |flag: &'static str, text: &Option<String>| {
            text.as_deref()
                .map(parse_rfc3339)
                .transpose()
                .map_err(|reason| FilterError::Time { flag, reason })
        };
        let (from, to) = (time("from", &args.from)?, time("to", &args.to)?);
        if let (Some(from), Some(to)) = (from, to) {
            if from >= to {
                return Err(FilterError::EmptyRange);
            }
        }
        Ok(Filter {
            args: args.clone(),
            images,
            from,
            to,
        })
    }

    pub fn args(&self) -> &FilterArgs {
        &self.args
    }

    /// True when every line matches (no flag given).
    pub fn is_empty(&self) -> bool {
        self.args == FilterArgs::default()
    }

    pub fn matches(&self, line: &Value) -> bool {
        let a = &self.args;
        let text = |pointer: &str| line.pointer(pointer).and_then(Value::as_str);
        any(&a.container, |c| {
            text("/container/id").is_some_and(|id| !c.is_empty() && id.starts_with(c.as_str()))
                || text("/container/name") == Some(c.as_str())
        }) && any(&a.namespace, |ns| {
            text("/container/pod/namespace") == Some(ns.as_str())
        }) && (self.images.is_empty()
            || text("/container/image").is_some_and(|i| self.images.iter().any(|g| g.is_match(i))))
            && any(&a.rule, |r| text("/violation/rule") == Some(r.as_str()))
            && any(&a.kind, |k| text("/kind") == Some(k.as_str()))
            && any(&a.pid, |pid| {
                line.pointer("/process/pid").and_then(Value::as_u64) == Some(u64::from(*pid))
            })
            && any(&a.session, |s| {
                session_of(line).as_deref() == Some(s.as_str())
            })
            && self.in_time(line)
    }

    fn in_time(&self, line: &Value) -> bool {
        if self.from.is_none() && self.to.is_none() {
            return true;
        }
        let Some(t) = line
            .pointer("/time")
            .and_then(Value::as_str)
            .and_then(|t| parse_rfc3339(t).ok())
        else {
            return false;
        };
        self.from.is_none_or(|from| t >= from) && self.to.is_none_or(|to| t < to)
    }
}

fn any<T>(wanted: &[T], matches: impl Fn(&T) -> bool) -> bool {
    wanted.is_empty() || wanted.iter().any(matches)
}

/// `session.id` (string or number), else the audit session id.
pub fn session_of(line: &Value) -> Option<String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match line.get("session") {
        Some(session) if session.is_object() => session.get("id").and_then(scalar),
        _ => line.pointer("/process/sessionid").and_then(scalar),
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use serde_json::json;

    fn exec(id: &str, name: &str, image: &str, pid: u32, time: &str) -> Value {
        json!({"schema":"sealwatch.event/v1","time":time,"node":"n","kind":"exec",
               "process":{"pid":pid,"sessionid":7},
               "container":{"id":id,"name":name,"image":image,"pod":{"namespace":"prod"}}})
    }

    fn filter(args: FilterArgs) -> Filter {
        Filter::compile(&args).unwrap()
    }

    #[test]
    fn fields_and_flags_combine() {
        let a = exec(
            "abcdef01",
            "web",
            "registry.example/app:1",
            10,
            "2026-01-01T00:00:05Z",
        );
        let mut v = a.clone();
        v["violation"] = json!({"rule":"root-in-container"});
        let host = json!({"time":"2026-01-01T00:00:06Z","kind":"exec","process":{"pid":11},"container":null});

        let by_prefix = filter(FilterArgs {
            container: vec!["abc".into()],
            ..Default::default()
        });
        assert!(by_prefix.matches(&a) && !by_prefix.matches(&host));
        let by_name = filter(FilterArgs {
            container: vec!["web".into(), "db".into()],
            ..Default::default()
        });
        assert!(by_name.matches(&a));
        let empty_prefix = filter(FilterArgs {
            container: vec![String::new()],
            ..Default::default()
        });
        assert!(
            !empty_prefix.matches(&a),
            "an empty id prefix must not match everything"
        );

        let glob = filter(FilterArgs {
            image: vec!["registry.example/*".into()],
            namespace: vec!["prod".into()],
            ..Default::default()
        });
        assert!(glob.matches(&a) && !glob.matches(&host));
        let rule = filter(FilterArgs {
            rule: vec!["root-in-container".into()],
            ..Default::default()
        });
        assert!(rule.matches(&v) && !rule.matches(&a));
        let pid_and_kind = filter(FilterArgs {
            pid: vec![11],
            kind: vec!["exec".into()],
            ..Default::default()
        });
        assert!(pid_and_kind.matches(&host) && !pid_and_kind.matches(&a));
        let session = filter(FilterArgs {
            session: vec!["7".into()],
            ..Default::default()
        });
        assert!(session.matches(&a) && !session.matches(&host));
        let mut with_session = a.clone();
        with_session["session"] = json!({"id": "s-1"});
        let s1 = filter(FilterArgs {
            session: vec!["s-1".into()],
            ..Default::default()
        });
        assert!(s1.matches(&with_session) && !session.matches(&with_session));
    }

    #[test]
    fn time_range_is_half_open() {
        let f = filter(FilterArgs {
            from: Some("2026-01-01T00:00:05Z".into()),
            to: Some("2026-01-01T00:00:06Z".into()),
            ..Default::default()
        });
        let at = |t: &str| exec("a", "b", "c", 1, t);
        assert!(f.matches(&at("2026-01-01T00:00:05.000000000Z")));
        assert!(f.matches(&at("2026-01-01T00:00:05.999999999Z")));
        assert!(!f.matches(&at("2026-01-01T00:00:06.000000000Z")));
        assert!(!f.matches(&at("2026-01-01T00:00:04.999999999Z")));
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(matches!(
            Filter::compile(&FilterArgs {
                rule: vec!["nope".into()],
                ..Default::default()
            }),
            Err(FilterError::Rule(_))
        ));
        assert!(matches!(
            Filter::compile(&FilterArgs {
                image: vec!["[".into()],
                ..Default::default()
            }),
            Err(FilterError::Glob { .. })
        ));
        assert!(matches!(
            Filter::compile(&FilterArgs {
                from: Some("soon".into()),
                ..Default::default()
            }),
            Err(FilterError::Time { .. })
        ));
        let backwards = FilterArgs {
            from: Some("2026-01-02T00:00:00Z".into()),
            to: Some("2026-01-01T00:00:00Z".into()),
            ..Default::default()
        };
        assert_eq!(
            Filter::compile(&backwards).err(),
            Some(FilterError::EmptyRange)
        );
    }

    #[test]
    fn wire_form_round_trips_and_refuses_unknown_keys() {
        let args = FilterArgs {
            container: vec!["x".into()],
            pid: vec![3],
            ..Default::default()
        };
        let text = serde_json::to_string(&args).unwrap();
        assert_eq!(text, r#"{"container":["x"],"pid":[3]}"#);
        assert_eq!(serde_json::from_str::<FilterArgs>(&text).unwrap(), args);
        assert!(serde_json::from_str::<FilterArgs>(r#"{"containr":["x"]}"#).is_err());
    }
}
