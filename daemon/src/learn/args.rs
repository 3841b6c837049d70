//! The `learn` command line, and learning from saved event lines.
use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{ArgGroup, Args};

use super::{Counts, LearnHeader, Learner};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["duration", "from_events"])))]
pub struct LearnArgs {
    /// Watch the node for this long (e.g. 10m, 1h; needs root), then write the policy files.
    #[arg(long, value_name = "DURATION", value_parser = crate::capture::options::parse_duration)]
    pub duration: Option<Duration>,
    /// Learn from saved JSON event lines instead (from `run` or `replay`); `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub from_events: Option<PathBuf>,
    /// Directory for the policy files, one per container image (created when missing; files of
    /// the same name are replaced).
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    #[command(flatten, next_help_heading = "Sensor options (with --duration)")]
    pub run: crate::run::RunArgs,
}

/// What a learning run read and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub counts: Counts,
    pub images: usize,
    pub files: Vec<PathBuf>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        write!(
            f,
            "learned {} image(s) from {} network event(s) in {} line(s)",
            self.images, c.learned, c.lines
        )?;
        if c.without_image > 0 {
            write!(
                f,
                "; {} network event(s) without a container image skipped",
                c.without_image
            )?;
        }
        if c.malformed > 0 {
            write!(f, "; {} malformed line(s) skipped", c.malformed)?;
        }
        if c.dropped > 0 {
            write!(
                f,
                "; {} observation(s) over the per-image limit not listed",
                c.dropped
            )?;
        }
        Ok(())
    }
}

/// The `--from-events` input: the file, or stdin for `-`.
pub fn open_events(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Box::new(std::io::BufReader::new(file)))
}

/// `sealwatch learn --from-events`: reads JSON event lines from `reader` to the end, then writes
/// one policy file per image into `out_dir`. A line that is not valid UTF-8 counts as malformed.
pub fn learn_from_events(
    mut reader: impl BufRead,
    out_dir: &Path,
    header: &LearnHeader,
) -> anyhow::Result<Summary> {
    let mut learner = Learner::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .context("reading event lines")?;
        if read == 0 {
            break;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match std::str::from_utf8(text) {
            Ok(text) => {
                learner.observe_line(text);
            }
            Err(_) => learner.count_malformed(),
        }
    }
    let files = learner.write(out_dir, header)?;
    Ok(Summary {
        counts: learner.counts(),
        images: learner.images().count(),
        files,
    })
}
