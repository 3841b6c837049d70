//! `sealwatch learn`: turn observed network events into a reviewable policy, one YAML file per
//! container image.
//!
//! Input is the daemon's own JSON event lines (live, or saved from `run`/`replay`), so learning
//! needs no access to the kernel and gives the same files for the same lines: every map is
//! ordered and nothing reads the clock. What was observed is learned, failed and blocked
//! attempts included (they are intent, and the comments say how many failed); the reviewer
//! decides what stays.

mod args;
mod event;
mod model;
mod naming;
mod render;
mod yaml;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use thiserror::Error;

pub use args::{learn_from_events, open_events, LearnArgs, Summary};
pub use event::Observed;

use model::{ImageNet, Stamp};

/// What the files' first comment line says about the observation; `None` fields are taken from
/// the lines themselves (the nodes named in them, their first and last `time`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LearnHeader {
    pub node: Option<String>,
    /// (from, to), as RFC 3339 text.
    pub window: Option<(String, String)>,
}

#[derive(Debug, Error)]
pub enum LearnError {
    #[error("cannot create {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// How the lines observed so far were used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub lines: u64,
    /// connect, accept and listen events of containers with a known image.
    pub learned: u64,
    /// Network events of host processes, or of containers whose image was not known.
    pub without_image: u64,
    /// Lines that are not event JSON, or network events with missing or invalid fields.
    pub malformed: u64,
    /// Observations left out because their image already had `MAX_ITEMS_PER_IMAGE` entries.
    pub dropped: u64,
}

/// Aggregates network events per image.
#[derive(Debug, Default)]
pub struct Learner {
    images: BTreeMap<String, ImageNet>,
    nodes: BTreeSet<String>,
    window: Option<(Stamp, Stamp)>,
    counts: Counts,
}

/// `sealwatch learn --duration`: the learner as a tap of the daemon's output, fed every network
/// line.
impl crate::output::Tap for Learner {
    fn wants(&mut self, line: &crate::output::EventLine) -> bool {
        line.network.is_some()
    }

    fn take(&mut self, _line: &crate::output::EventLine, json: &str) {
        self.observe_line(json);
    }
}

impl Learner {
    pub fn new() -> Learner {
        Learner::default()
    }

    /// Takes one JSON event line (without its newline) and says what became of it.
    pub fn observe_line(&mut self, line: &str) -> Observed {
        self.counts.lines += 1;
        let observed = match event::parse(line) {
            Err(observed) => observed,
            Ok(parsed) => {
                if let Some(node) = parsed.node {
                    self.nodes.insert(node);
                }
                if let Some(stamp) = &parsed.time {
                    self.widen_window(stamp.time, &stamp.text);
                }
                match parsed.network {
                    Some(Ok(net)) => {
                        let image = self.images.entry(net.image.clone()).or_default();
                        if !image.add(&net) {
                            self.counts.dropped += 1;
                        }
                        Observed::Learned
                    }
                    Some(Err(observed)) => observed,
                    None => Observed::Ignored,
                }
            }
        };
        match observed {
            Observed::Learned => self.counts.learned += 1,
            Observed::WithoutImage => self.counts.without_image += 1,
            Observed::Malformed => self.counts.malformed += 1,
            Observed::Ignored => {}
        }
        observed
    }

    /// Counts a line that could not even be read as text.
    pub fn count_malformed(&mut self) {
        self.counts.lines += 1;
        self.counts.malformed += 1;
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The images learned so far, sorted.
    pub fn images(&self) -> impl Iterator<Item = &str> {
        self.images.keys().map(String::as_str)
    }

    /// Writes one policy file per image into `dir` (created when missing; files of the same
    /// name are replaced) and returns their paths, in image order.
    pub fn write(&self, dir: &Path, header: &LearnHeader) -> Result<Vec<PathBuf>, LearnError> {
        std::fs::create_dir_all(dir).map_err(|source| LearnError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let mut paths = Vec::new();
        for (path, text) in self.render_all(dir, header) {
            std::fs::write(&path, text).map_err(|source| LearnError::Write {
                path: path.clone(),
                source,
            })?;
            paths.push(path);
        }
        Ok(paths)
    }

    /// Each file's path and text, in image order.
    fn render_all(&self, dir: &Path, header: &LearnHeader) -> Vec<(PathBuf, String)> {
        let images: Vec<&str> = self.images().collect();
        let stems = naming::stems(&images);
        let node = header.node.clone().unwrap_or_else(|| self.node_text());
        let window = header.window.clone().unwrap_or_else(|| self.window_text());
        self.images
            .iter()
            .zip(stems)
            .map(|((image, net), stem)| {
                let file = render::File {
                    image,
                    workload: &format!("learned-{stem}"),
                    node: &node,
                    window: (&window.0, &window.1),
                    net,
                };
                (dir.join(format!("{stem}.yaml")), file.render())
            })
            .collect()
    }

    fn widen_window(&mut self, time: SystemTime, text: &str) {
        match &mut self.window {
            None => {
                let stamp = Stamp::new(time, text);
                self.window = Some((stamp.clone(), stamp));
            }
            Some((first, last)) => {
                if time < first.time {
                    *first = Stamp::new(time, text);
                }
                if time > last.time {
                    *last = Stamp::new(time, text);
                }
            }
        }
    }

    fn node_text(&self) -> String {
        if self.nodes.is_empty() {
            return "unknown".to_owned();
        }
        self.nodes.iter().cloned().collect::<Vec<_>>().join(", ")
    }

    fn window_text(&self) -> (String, String) {
        match &self.window {
            Some((first, last)) => (first.text.clone(), last.text.clone()),
            None => ("unknown".to_owned(), "unknown".to_owned()),
        }
    }
}
