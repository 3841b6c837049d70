use super::*;

fn argv(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|a| a.as_bytes().to_vec()).collect()
}

/// Whether `path` (opened as `text` from `/work`) is the script of `exe` run as `args`.
fn script(exe: &str, args: &[&str], path: &str, text: &str) -> bool {
    let opened = OpenedFile {
        path: path.as_bytes(),
        text: text.as_bytes(),
        cwd: b"/work",
    };
    is_script(exe.as_bytes(), &argv(args), &opened)
}

#[test]
fn the_script_is_found_whatever_the_options() {
    let sh = "/bin/busybox";
    assert!(script(sh, &["sh", "/tmp/x.sh"], "/tmp/x.sh", "/tmp/x.sh"));
    assert!(script(
        sh,
        &["sh", "-e", "/tmp/x.sh"],
        "/tmp/x.sh",
        "/tmp/x.sh"
    ));
    assert!(script(
        sh,
        &["sh", "-o", "errexit", "x.sh"],
        "/work/x.sh",
        "x.sh"
    ));
    assert!(script(
        sh,
        &["sh", "+o", "nounset", "-eux", "x.sh"],
        "/work/x.sh",
        "x.sh"
    ));
    assert!(script(
        sh,
        &["busybox", "sh", "-e", "x.sh"],
        "/work/x.sh",
        "x.sh"
    ));
    assert!(script(
        "/bin/bash",
        &["bash", "--rcfile", "/etc/rc", "-x", "x.sh"],
        "/work/x.sh",
        "x.sh"
    ));
    assert!(script(sh, &["sh", "--", "-x.sh"], "/work/-x.sh", "-x.sh"));
    // python opens its script by an absolute path.
    assert!(script(
        "/usr/bin/python3.11",
        &["python3", "-u", "x.py"],
        "/work/x.py",
        "/work/x.py"
    ));
    assert!(script(
        "/usr/bin/python3",
        &["python3", "-W", "ignore", "-X", "dev", "x.py"],
        "/work/x.py",
        "/work/x.py"
    ));
    assert!(script(
        "/usr/bin/python3",
        &["python3", "-Wignore", "x.py"],
        "/work/x.py",
        "/work/x.py"
    ));
    assert!(script(
        "/usr/bin/perl",
        &["perl", "-w", "-Mstrict", "x.pl"],
        "/work/x.pl",
        "x.pl"
    ));
    assert!(script(
        "/usr/bin/ruby",
        &["ruby", "-I", "/lib", "x.rb"],
        "/work/x.rb",
        "x.rb"
    ));
}

#[test]
fn a_symlink_to_the_script_is_the_script() {
    // `ln -s x.sh /tmp/y; sh /tmp/y`: the kernel resolves the link, the text is argv's.
    assert!(script(
        "/bin/busybox",
        &["sh", "/tmp/y"],
        "/tmp/x.sh",
        "/tmp/y"
    ));
    assert!(script(
        "/bin/busybox",
        &["sh", "../tmp/y"],
        "/tmp/x.sh",
        "../tmp/y"
    ));
}

#[test]
fn modules_and_sourced_files_are_scripts() {
    let python = "/usr/bin/python3";
    assert!(script(
        python,
        &["python3", "-m", "evil"],
        "/work/evil.py",
        "/work/evil.py"
    ));
    assert!(script(
        python,
        &["python3", "-m", "pkg.tool"],
        "/tmp/pkg/tool/__main__.py",
        "x"
    ));
    assert!(script(
        python,
        &["python3", "-mevil"],
        "/work/evil.py",
        "/work/evil.py"
    ));
    assert!(!script(
        python,
        &["python3", "-m", "evil", "/tmp/data"],
        "/tmp/data",
        "/tmp/data"
    ));
    let sh = "/bin/busybox";
    assert!(script(
        sh,
        &["sh", "-c", ". /tmp/x.sh"],
        "/tmp/x.sh",
        "/tmp/x.sh"
    ));
    assert!(script(
        sh,
        &["sh", "-ec", "id; source '/tmp/x.sh'"],
        "/tmp/x.sh",
        "/tmp/x.sh"
    ));
    // node preloads a module named by `-r`.
    assert!(script(
        "/usr/bin/node",
        &["node", "-r", "/tmp/x.js", "/app/a.js"],
        "/tmp/x.js",
        "/tmp/x.js"
    ));
}

#[test]
fn data_a_script_reads_is_not_a_script() {
    let sh = "/bin/busybox";
    // The image's script reads a file it was given.
    assert!(!script(
        sh,
        &["sh", "/app/run.sh", "/tmp/data"],
        "/tmp/data",
        "/tmp/data"
    ));
    assert!(!script(
        sh,
        &["sh", "-e", "/app/run.sh", "/tmp/data"],
        "/tmp/data",
        "/tmp/data"
    ));
    assert!(!script(
        sh,
        &["sh", "-c", "read x < /tmp/data"],
        "/tmp/data",
        "/tmp/data"
    ));
    assert!(!script(
        "/usr/bin/python3",
        &["python3", "/app/a.py", "/tmp/d"],
        "/tmp/d",
        "/tmp/d"
    ));
    assert!(!script(
        "/usr/bin/perl",
        &["perl", "-e", "1", "/tmp/d"],
        "/tmp/d",
        "/tmp/d"
    ));
    assert!(!script(
        "/usr/bin/perl",
        &["perl", "-e", "open(F, $ARGV[0])", "/tmp/d"],
        "/tmp/d",
        "/tmp/d"
    ));
    // Not an interpreter at all: busybox cat.
    assert!(!script(sh, &["cat", "/tmp/x.sh"], "/tmp/x.sh", "/tmp/x.sh"));
}

#[test]
fn interpreter_names_lose_their_version() {
    assert!(reads_are_watched(b"/usr/bin/python3.11"));
    assert!(reads_are_watched(b"/usr/bin/perl5.36.0"));
    assert!(reads_are_watched(b"/bin/busybox"));
    assert!(!reads_are_watched(b"/usr/bin/cat"));
    assert!(kernel_names().any(|n| n == "busybox"));
}
