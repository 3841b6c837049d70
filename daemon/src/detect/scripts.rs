//! Which file an interpreter runs as its script. The kernel reports every read-only open of a
//! file of the container's own by a process whose executable is an interpreter
//! (`file_op::SCRIPT_READ`, with the path text the interpreter gave); this module decides from
//! the interpreter's argv whether that file is the script it was asked to run, or data a script
//! reads. Nothing here guesses which argv word is the script before it is opened: the file the
//! interpreter really opened is matched against the words that may name it, whatever options
//! come first (`sh -e x.sh`, `sh -o errexit x.sh`, `python3 -u x.py`, `perl -w x.pl`).
use super::paths::resolve;

/// How an interpreter's command line names its script.
struct Grammar {
    /// Executable names, as the kernel's key has them (no version suffix: `python3.11` is
    /// `python`).
    names: &'static [&'static str],
    /// Short options whose argument follows (attached, or as the next word). `None`: the
    /// interpreter has too many to list, so any option is taken to possibly have one.
    arg_letters: Option<&'static [u8]>,
    /// Long options whose argument is the next word.
    arg_long: &'static [&'static str],
    /// Options whose argument is code to run (`-c`, `-e`): its words may source a script
    /// (`sh -c '. /tmp/x.sh'`).
    inline_letters: &'static [u8],
    /// The option naming a module to run (`python3 -m pkg.mod`).
    module_letter: Option<u8>,
}

const SHELL: Grammar = Grammar {
    names: &["sh", "ash", "bash", "dash", "zsh", "ksh", "mksh"],
    arg_letters: Some(b"coO"),
    arg_long: &["--rcfile", "--init-file"],
    inline_letters: b"c",
    module_letter: None,
};

const PYTHON: Grammar = Grammar {
    names: &["python", "pypy"],
    arg_letters: Some(b"cmWX"),
    arg_long: &["--check-hash-based-pycs"],
    inline_letters: b"c",
    module_letter: Some(b'm'),
};

/// perl attaches every option's argument (`-Idir`, `-Mmod`) except the code of `-e`/`-E`.
const PERL: Grammar = Grammar {
    names: &["perl"],
    arg_letters: Some(b"eE"),
    arg_long: &[],
    inline_letters: b"eE",
    module_letter: None,
};

const OTHERS: Grammar = Grammar {
    names: &["ruby", "node", "nodejs", "php", "lua", "luajit"],
    arg_letters: None,
    arg_long: &[],
    inline_letters: b"erp",
    module_letter: None,
};

const GRAMMARS: &[&Grammar] = &[&SHELL, &PYTHON, &PERL, &OTHERS];

/// The names the kernel marks as interpreters (`busybox` included: which applet runs is argv's
/// to say, and is decided here).
pub fn kernel_names() -> impl Iterator<Item = &'static str> {
    GRAMMARS
        .iter()
        .flat_map(|g| g.names.iter().copied())
        .chain(["busybox"])
}

/// An executable's name as the kernel keys it: its base name without a version suffix.
fn key_of(path: &[u8]) -> String {
    let base = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
    let mut key = [0u8; sealwatch_abi::INTERPRETER_NAME_LEN];
    let n = base.len().min(key.len() - 1);
    key[..n].copy_from_slice(&base[..n]);
    sealwatch_abi::interpreter_key(&mut key);
    let end = key.iter().position(|b| *b == 0).unwrap_or(key.len());
    String::from_utf8_lossy(&key[..end]).into_owned()
}

/// Whether `exe` is an interpreter whose scripts the kernel reports by their reads (then the
/// exec of a `#!` script is judged by that read, not at the exec).
pub fn reads_are_watched(exe: &[u8]) -> bool {
    let key = key_of(exe);
    kernel_names().any(|name| name == key)
}

/// The interpreter's grammar and the words after its name; busybox names its applet in argv[0]
/// (`sh` as a symlink) or argv[1] (`busybox sh`).
fn grammar_of<'a>(exe: &[u8], args: &'a [Vec<u8>]) -> Option<(&'static Grammar, &'a [Vec<u8>])> {
    let mut name = key_of(exe);
    let mut rest = args.get(1..).unwrap_or_default();
    if name == "busybox" {
        name = key_of(args.first()?);
        if name == "busybox" {
            name = key_of(rest.first()?);
            rest = rest.get(1..).unwrap_or_default();
        }
    }
    let grammar = GRAMMARS
        .iter()
        .find(|g| g.names.iter().any(|n| *n == name))?;
    Some((grammar, rest))
}

/// A file an interpreter opened: its path as the kernel resolved it, the text it passed to
/// `open`, and the interpreter's working directory at exec.
pub struct OpenedFile<'a> {
    pub path: &'a [u8],
    pub text: &'a [u8],
    pub cwd: &'a [u8],
}

impl OpenedFile<'_> {
    /// Whether an argv word names this file (as given, relative to the cwd, or by the path the
    /// interpreter made of it: python opens its script by an absolute path).
    fn named_by(&self, word: &[u8]) -> bool {
        if word.is_empty() {
            return false;
        }
        if word == self.text {
            return true;
        }
        let word = resolve(self.cwd, word);
        word == self.path || (!self.text.is_empty() && word == resolve(self.cwd, self.text))
    }

    /// Whether it is the file of module `module` (`pkg.mod`: `…/pkg/mod.py` or
    /// `…/pkg/mod/__main__.py`).
    fn is_module(&self, module: &[u8]) -> bool {
        let relative: Vec<u8> = module
            .iter()
            .map(|b| if *b == b'.' { b'/' } else { *b })
            .collect();
        let file = [b"/", relative.as_slice(), b".py"].concat();
        let main = [b"/", relative.as_slice(), b"/__main__.py"].concat();
        !module.is_empty() && (self.path.ends_with(&file) || self.path.ends_with(&main))
    }

    /// Whether inline code sources it (`. /tmp/x.sh`, `source /tmp/x.sh`).
    fn sourced_by(&self, code: &[u8]) -> bool {
        let words: Vec<&[u8]> = code
            .split(|b| b.is_ascii_whitespace() || matches!(b, b';' | b'&' | b'|' | b'(' | b')'))
            .filter(|w| !w.is_empty())
            .collect();
        words
            .windows(2)
            .any(|pair| matches!(pair[0], b"." | b"source") && self.named_by(trim_quotes(pair[1])))
    }
}

fn trim_quotes(word: &[u8]) -> &[u8] {
    let quote = |b: &u8| matches!(b, b'\'' | b'"');
    let start = word.iter().position(|b| !quote(b)).unwrap_or(word.len());
    let end = word
        .iter()
        .rposition(|b| !quote(b))
        .map_or(start, |i| i + 1);
    &word[start..end.max(start)]
}

/// Whether `opened` is the script the interpreter `exe` (argv `args`) was asked to run: the
/// first word that is neither an option nor (possibly) an option's argument names it, or a
/// module option names it, or inline code sources it. A file named only by a later word (a
/// script's own argument, which the script may read) is data.
pub fn is_script(exe: &[u8], args: &[Vec<u8>], opened: &OpenedFile<'_>) -> bool {
    let Some((grammar, words)) = grammar_of(exe, args) else {
        return false;
    };
    let shell = std::ptr::eq(grammar, &SHELL);
    let mut options_done = false;
    // The previous word was an option that takes (or may take) this word as its argument.
    let mut may_be_argument = false;
    let mut argument_is_code = false;
    let mut argument_is_module = false;
    for word in words {
        let option = !options_done
            && word.len() > 1
            && (word.starts_with(b"-") || (shell && word.starts_with(b"+")));
        if !option {
            if may_be_argument {
                if argument_is_module {
                    // Words after `-m mod` are the module's arguments.
                    return opened.is_module(word);
                }
                if argument_is_code {
                    // Words after inline code are its arguments, but the code may source the
                    // file; where the grammar is not exact (`node -r FILE` preloads a file) the
                    // word may name it too.
                    let inexact = grammar.arg_letters.is_none();
                    return opened.sourced_by(word) || (inexact && opened.named_by(word));
                }
                // It may be the option's argument, or already the script.
                if opened.named_by(word) {
                    return true;
                }
                may_be_argument = false;
                continue;
            }
            return opened.named_by(word);
        }
        if word.as_slice() == b"--" {
            options_done = true;
            may_be_argument = false;
            continue;
        }
        let cluster = if word.starts_with(b"--") {
            let takes = grammar.arg_letters.is_none()
                || grammar
                    .arg_long
                    .iter()
                    .any(|o| o.as_bytes() == word.as_slice());
            Cluster {
                takes_next: takes && !word.contains(&b'='),
                ..Cluster::default()
            }
        } else {
            Cluster::of(grammar, &word[1..])
        };
        if !cluster.attached.is_empty() {
            if cluster.module {
                return opened.is_module(cluster.attached);
            }
            if cluster.code && opened.sourced_by(cluster.attached) {
                return true;
            }
        }
        may_be_argument = cluster.takes_next;
        argument_is_code = cluster.code;
        argument_is_module = cluster.module;
    }
    false
}

/// What a cluster of short options (`-eu`, `-o`, `-Wignore`, `-mpkg`) says about what follows.
#[derive(Default)]
struct Cluster<'a> {
    /// The next word is (or may be) an option's argument.
    takes_next: bool,
    /// That argument is code to run.
    code: bool,
    /// That argument is a module to run.
    module: bool,
    /// An argument written in the cluster itself (`-Wignore`: `ignore`).
    attached: &'a [u8],
}

impl<'a> Cluster<'a> {
    fn of(grammar: &Grammar, letters: &'a [u8]) -> Cluster<'a> {
        let Some(arg_letters) = grammar.arg_letters else {
            // Any option may have an argument, attached or next.
            let code = letters
                .first()
                .is_some_and(|l| grammar.inline_letters.contains(l));
            let attached = letters.get(1..).unwrap_or_default();
            return Cluster {
                takes_next: true,
                code,
                module: false,
                attached,
            };
        };
        for (i, letter) in letters.iter().enumerate() {
            if arg_letters.contains(letter) {
                // The rest of the cluster is its argument; if there is none, the next word is.
                let attached = &letters[i + 1..];
                return Cluster {
                    takes_next: attached.is_empty(),
                    code: grammar.inline_letters.contains(letter),
                    module: grammar.module_letter == Some(*letter),
                    attached,
                };
            }
        }
        Cluster::default()
    }
}

#[cfg(test)]
#[path = "scripts_tests.rs"]
mod tests;
