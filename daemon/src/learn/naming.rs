//! File and workload names from image references, and images as exact-match globs.
use std::collections::{BTreeMap, BTreeSet};

/// Longest stem kept from an image before the hash (file names are at most 255 bytes, workload
/// names 128 characters, both with a prefix or suffix added).
const MAX_SLUG: usize = 100;

/// One stem per image, same order, all distinct: the image with every character outside
/// `[A-Za-z0-9._-]` as `-` (`localhost/web:1` → `localhost-web-1`), plus `-` and a hash of the
/// whole image when that is not unique among `images` or had to be shortened.
pub(super) fn stems(images: &[&str]) -> Vec<String> {
    let slugs: Vec<(String, bool)> = images.iter().map(|image| slug(image)).collect();
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for (slug, _) in &slugs {
        *uses.entry(slug.as_str()).or_default() += 1;
    }
    let mut taken = BTreeSet::new();
    images
        .iter()
        .zip(&slugs)
        .map(|(image, (slug, shortened))| {
            let base = if *shortened || uses.get(slug.as_str()).copied().unwrap_or(0) > 1 {
                format!("{slug}-{:08x}", fnv1a(image))
            } else {
                slug.clone()
            };
            // A stem can still meet another image's (hash collision, or an image whose own
            // name looks hashed): count on, deterministically in image order.
            let mut stem = base.clone();
            let mut n = 2;
            while !taken.insert(stem.clone()) {
                stem = format!("{base}-{n}");
                n += 1;
            }
            stem
        })
        .collect()
}

/// The sanitized image and whether it lost information beyond the character mapping (cut to
/// length, or empty).
fn slug(image: &str) -> (String, bool) {
    let mut out = String::new();
    for ch in image.chars() {
        let ch = if ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-') {
            ch
        } else {
            '-'
        };
        if !(ch == '-' && out.ends_with('-')) {
            out.push(ch);
        }
    }
    let trim = |s: &str| s.trim_matches(['-', '.']).to_owned();
    let mut out = trim(&out);
    let mut shortened = false;
    if out.len() > MAX_SLUG {
        out = trim(&out[..MAX_SLUG]); // ASCII only, so any index is a char boundary
        shortened = true;
    }
    if out.is_empty() {
        return ("image".to_owned(), true);
    }
    (out, shortened)
}

/// FNV-1a, 32 bits: short, stable across Rust versions and platforms (std's hasher is not
/// promised to be).
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash: u32, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// `image` as a policy glob that matches exactly it: glob metacharacters behind a backslash.
pub(super) fn exact_glob(image: &str) -> String {
    let mut out = String::with_capacity(image.len());
    for ch in image.chars() {
        if matches!(
            ch,
            '\\' | '*' | '?' | '[' | ']' | '{' | '}' | ',' | '!' | '^'
        ) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_readable_and_unique() {
        let long = format!("registry.example/{}:1", "x".repeat(200));
        let images = [
            "localhost/web:1",
            "localhost-web-1",
            "docker.io/library/nginx@sha256:abcd",
            "///",
            long.as_str(),
        ];
        let stems = stems(&images);
        assert_eq!(
            stems[0],
            format!("localhost-web-1-{:08x}", fnv1a(images[0]))
        );
        assert_eq!(
            stems[1],
            format!("localhost-web-1-{:08x}", fnv1a(images[1]))
        );
        assert_eq!(stems[2], "docker.io-library-nginx-sha256-abcd");
        assert!(stems[3].starts_with("image-"));
        assert!(stems[4].len() <= MAX_SLUG + 9);
        assert_eq!(stems.iter().collect::<BTreeSet<_>>().len(), stems.len());
        assert!(stems.iter().all(|s| s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))));
        assert_eq!(super::stems(&["localhost/web:1"]), ["localhost-web-1"]);
        assert_eq!(super::stems(&[".hidden/..:x"]), ["hidden-..-x"]);
    }

    #[test]
    fn exact_globs_match_only_their_image() {
        let build = |pattern: &str| {
            globset::GlobBuilder::new(pattern)
                .literal_separator(false)
                .backslash_escape(true)
                .build()
                .map(|g| g.compile_matcher())
        };
        for image in [
            "localhost/web:1",
            "weird/[a]*{b,c}?:\\x!^",
            "reg:5000/a/b@sha256:00ff",
        ] {
            let glob = build(&exact_glob(image));
            assert!(glob.as_ref().is_ok_and(|g| g.is_match(image)), "{image}");
            for other in ["localhost/web:10", "weird/a*b:\\x", "x"] {
                if other != image {
                    assert!(glob.as_ref().is_ok_and(|g| !g.is_match(other)));
                }
            }
        }
    }
}
