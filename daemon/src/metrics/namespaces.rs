//! Keeps the `pod_namespace` label bounded: the first [`NAMESPACE_CAP`] distinct namespaces seen
//! keep their name, every later one is counted under [`OTHER`]. A node rarely runs pods of more
//! than a few dozen namespaces; the cap protects Prometheus from a cluster that creates one
//! namespace per CI job.

use std::collections::HashSet;

/// How many distinct namespaces keep their own label value.
pub const NAMESPACE_CAP: usize = 64;
/// The label value of every namespace past the cap.
pub const OTHER: &str = "other";

#[derive(Debug, Default)]
pub struct NamespaceCap {
    admitted: HashSet<String>,
    cap: usize,
}

impl NamespaceCap {
    pub fn new(cap: usize) -> Self {
        NamespaceCap {
            admitted: HashSet::new(),
            cap,
        }
    }

    /// The label value for `namespace` ("" outside a pod). Admission is permanent, so a label
    /// never changes meaning while the process runs and counters built on it stay monotonic.
    pub fn label(&mut self, namespace: Option<&str>) -> String {
        let Some(namespace) = namespace else {
            return String::new();
        };
        if self.admitted.contains(namespace) {
            return namespace.to_owned();
        }
        if self.admitted.len() < self.cap {
            self.admitted.insert(namespace.to_owned());
            return namespace.to_owned();
        }
        OTHER.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_past_the_cap_become_other_and_admission_is_stable() {
        let mut cap = NamespaceCap::new(2);
        assert_eq!(cap.label(None), "");
        assert_eq!(cap.label(Some("a")), "a");
        assert_eq!(cap.label(Some("b")), "b");
        assert_eq!(cap.label(Some("c")), OTHER);
        // Admitted ones keep their name; the overflow stays "other" however often it is seen.
        assert_eq!(cap.label(Some("a")), "a");
        assert_eq!(cap.label(Some("c")), OTHER);
        assert_eq!(cap.label(Some("b")), "b");
    }
}
