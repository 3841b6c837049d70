//! Exceptions: documented globs that exempt a subject (a process in a container) from one rule.

use std::fmt;

use globset::{GlobBuilder, GlobMatcher};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::keys::{checked_str, field_keys, UniqueKey};

/// What an exception is matched against (all borrowed from the event; `None` = unknown / host).
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    pub image: Option<&'a str>,
    pub container_name: Option<&'a str>,
    pub pod_namespace: Option<&'a str>,
    pub exe: Option<&'a str>,
    pub args: &'a [String],
}

/// One compiled glob. `*` and `?` match any character, `/` included; `[abc]`, `[!abc]` and
/// `{a,b}` work as in a shell; `\` escapes. A glob must match the whole value.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    matcher: GlobMatcher,
}

impl Glob {
    pub(crate) fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("empty glob; omit the field to match any value".to_owned());
        }
        let glob = GlobBuilder::new(pattern)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("invalid glob `{pattern}`: {}", e.kind()))?;
        Ok(Glob {
            matcher: glob.compile_matcher(),
        })
    }

    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.matcher.is_match(text)
    }
}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(deserializer, "a glob string", Glob::new)
    }
}

/// An exception: it matches when every field it gives matches; a field it omits matches anything.
/// A given field never matches an unknown (`None`) value of the subject.
#[derive(Debug, Clone)]
pub(crate) struct Exception {
    image: Option<Glob>,
    container_name: Option<Glob>,
    pod_namespace: Option<Glob>,
    exe: Option<Glob>,
    /// Each glob must match the whole argument list joined with single spaces.
    args: Option<Vec<Glob>>,
    reason: String,
}

impl Exception {
    pub(crate) fn matches(&self, subject: &Subject<'_>) -> bool {
        fn field(glob: Option<&Glob>, value: Option<&str>) -> bool {
            match glob {
                None => true,
                Some(glob) => value.is_some_and(|value| glob.is_match(value)),
            }
        }
        field(self.image.as_ref(), subject.image)
            && field(self.container_name.as_ref(), subject.container_name)
            && field(self.pod_namespace.as_ref(), subject.pod_namespace)
            && field(self.exe.as_ref(), subject.exe)
            && self.args.as_ref().is_none_or(|globs| {
                let command_line = subject.args.join(" ");
                globs.iter().all(|glob| glob.is_match(&command_line))
            })
    }

    pub(crate) fn reason(&self) -> &str {
        &self.reason
    }
}

field_keys! {
    enum ExceptionField {
        Image => "image",
        ContainerName => "container_name",
        PodNamespace => "pod_namespace",
        Exe => "exe",
        Args => "args",
        Reason => "reason",
    }
}

impl<'de> Deserialize<'de> for Exception {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ExceptionVisitor)
    }
}

struct ExceptionVisitor;

impl<'de> Visitor<'de> for ExceptionVisitor {
    type Value = Exception;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an exception: a mapping with a `reason` and one or more of image, container_name, pod_namespace, exe, args")
    }

    // Errors returned here are reported at the start of the exception's mapping.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Exception, A::Error> {
        let mut seen = Vec::new();
        let (mut image, mut container_name, mut pod_namespace, mut exe) = (None, None, None, None);
        let (mut args, mut reason) = (None, None);
        while let Some(field) = map.next_key_seed(UniqueKey::new(&mut seen))? {
            match field {
                ExceptionField::Image => image = Some(map.next_value()?),
                ExceptionField::ContainerName => container_name = Some(map.next_value()?),
                ExceptionField::PodNamespace => pod_namespace = Some(map.next_value()?),
                ExceptionField::Exe => exe = Some(map.next_value()?),
                ExceptionField::Args => args = Some(map.next_value::<Args>()?.0),
                ExceptionField::Reason => reason = Some(map.next_value::<Reason>()?.0),
            }
        }
        if image.is_none()
            && container_name.is_none()
            && pod_namespace.is_none()
            && exe.is_none()
            && args.is_none()
        {
            return Err(de::Error::custom(
                "exception matches nothing: give at least one of image, container_name, \
                 pod_namespace, exe, args",
            ));
        }
        let Some(reason) = reason else {
            return Err(de::Error::custom(
                "exception has no `reason`: every exception must say why it is allowed",
            ));
        };
        Ok(Exception {
            image,
            container_name,
            pod_namespace,
            exe,
            args,
            reason,
        })
    }
}

/// `args:`, a non-empty list of globs.
struct Args(Vec<Glob>);

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Args;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of globs, e.g. [\"*--liveness*\"]")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Args, A::Error> {
                let mut globs = Vec::new();
                while let Some(glob) = seq.next_element()? {
                    globs.push(glob);
                }
                if globs.is_empty() {
                    return Err(de::Error::custom(
                        "`args` is empty; list at least one glob, or omit `args` to match any",
                    ));
                }
                Ok(Args(globs))
            }
        }
        deserializer.deserialize_seq(V)
    }
}

/// `reason:`, free text that must say something.
struct Reason(String);

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(deserializer, "a reason (free text)", |text| {
            if text.trim().is_empty() {
                Err("empty `reason`: say why this exception is allowed".to_owned())
            } else {
                Ok(Reason(text.to_owned()))
            }
        })
    }
}
