//! `__path__` globs with doublestar semantics: `*` and `?` within one path segment, `[abc]`
//! classes, `{a,b}` alternatives, and `**` for any number of directories (including none).
//!
//! Expansion walks only below the pattern's literal prefix directory and only as deep as the
//! pattern can reach, follows symlinks to files (kubelet's `/var/log/containers` links) and
//! returns regular files only.

use std::path::{Path, PathBuf};

use regex::Regex;

/// A compiled glob.
#[derive(Debug, Clone)]
pub struct Glob {
    pattern: String,
    base: PathBuf,
    re: Regex,
    /// Segments below `base`; `None` when `**` makes the depth unbounded.
    max_depth: Option<usize>,
}

/// Whether a path segment has glob syntax.
fn is_meta(seg: &str) -> bool {
    seg.contains(['*', '?', '[', '{'])
}

fn segment_regex(seg: &str, out: &mut String) -> Result<(), String> {
    let mut chars = seg.chars().peekable();
    let mut in_alt = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => {
                out.push('[');
                if chars.peek() == Some(&'!') || chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == ']' {
                        closed = true;
                        break;
                    }
                    if c == '\\' || c == '[' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                if !closed {
                    return Err(format!("unclosed '[' in glob segment {seg:?}"));
                }
                out.push(']');
            }
            '{' => {
                in_alt += 1;
                out.push_str("(?:");
            }
            ',' if in_alt > 0 => out.push('|'),
            '}' if in_alt > 0 => {
                in_alt -= 1;
                out.push(')');
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push_str(&regex::escape(&n.to_string()));
                }
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    if in_alt > 0 {
        return Err(format!("unclosed '{{' in glob segment {seg:?}"));
    }
    Ok(())
}

impl Glob {
    /// Compiles an absolute or relative glob.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("empty glob".into());
        }
        let absolute = pattern.starts_with('/');
        let segs: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
        let first_meta = segs.iter().position(|s| is_meta(s)).unwrap_or(segs.len());
        let mut base = PathBuf::from(if absolute { "/" } else { "." });
        for s in &segs[..first_meta] {
            base.push(s);
        }
        let rest = &segs[first_meta..];
        let mut re = String::from("^");
        let mut max_depth = Some(rest.len());
        for (i, s) in rest.iter().enumerate() {
            if *s == "**" {
                max_depth = None;
                if i + 1 == rest.len() {
                    re.push_str("(?:/.*)?");
                } else {
                    re.push_str("(?:/[^/]+)*");
                }
                continue;
            }
            re.push('/');
            segment_regex(s, &mut re)?;
        }
        re.push('$');
        let re = Regex::new(&re).map_err(|e| format!("invalid glob {pattern:?}: {e}"))?;
        Ok(Glob {
            pattern: pattern.into(),
            base,
            re,
            max_depth,
        })
    }

    /// The glob text.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The literal directory the glob starts from (watched for new files).
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Whether `path` matches.
    pub fn matches(&self, path: &Path) -> bool {
        match path.strip_prefix(&self.base) {
            Ok(rel) if rel.as_os_str().is_empty() => self.re.is_match(""),
            Ok(rel) => self.re.is_match(&format!("/{}", rel.to_string_lossy())),
            Err(_) => false,
        }
    }

    /// Regular files matching the glob, sorted.
    pub fn expand(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if self.max_depth == Some(0) {
            if std::fs::metadata(&self.base)
                .map(|m| m.is_file())
                .unwrap_or(false)
            {
                out.push(self.base.clone());
            }
            return out;
        }
        self.walk(&self.base, 0, &mut out);
        out.sort();
        out
    }

    fn walk(&self, dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in rd.flatten() {
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            let (is_file, is_dir) = if ft.is_symlink() {
                match std::fs::metadata(&path) {
                    // Directory symlinks are only followed where the depth is bounded, so a
                    // link loop cannot make `**` walk forever.
                    Ok(m) => (m.is_file(), m.is_dir() && self.max_depth.is_some()),
                    Err(_) => (false, false),
                }
            } else {
                (ft.is_file(), ft.is_dir())
            };
            if is_file && self.matches(&path) {
                out.push(path.clone());
            }
            if is_dir && self.max_depth.is_none_or(|d| depth + 1 < d) {
                self.walk(&path, depth + 1, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let g = Glob::new("/var/log/pods/*abc-123/app/*.log").unwrap();
        assert_eq!(g.base(), Path::new("/var/log/pods"));
        assert!(g.matches(Path::new("/var/log/pods/ns_pod_abc-123/app/0.log")));
        assert!(!g.matches(Path::new("/var/log/pods/ns_pod_abc-123/app/0.log.20240101")));
        assert!(!g.matches(Path::new("/var/log/pods/ns_pod_abc-123/other/0.log")));
        let g = Glob::new("/var/log/**/*.log").unwrap();
        assert!(g.matches(Path::new("/var/log/a.log")));
        assert!(g.matches(Path::new("/var/log/x/y/z/a.log")));
        assert!(!g.matches(Path::new("/var/log/x/a.txt")));
        let g = Glob::new("/logs/{app,web}-?.[lt]og").unwrap();
        assert!(g.matches(Path::new("/logs/web-1.tog")));
        assert!(!g.matches(Path::new("/logs/db-1.log")));
        let g = Glob::new("/logs/**").unwrap();
        assert!(g.matches(Path::new("/logs/a/b")));
    }

    #[test]
    fn expanding() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for f in ["a.log", "b.txt", "x/c.log", "x/y/d.log", "x/y/z/e.log"] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "").unwrap();
        }
        std::os::unix::fs::symlink(root.join("x/c.log"), root.join("link.log")).unwrap();
        let rel = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
                .collect()
        };
        let g = Glob::new(&format!("{}/*.log", root.display())).unwrap();
        assert_eq!(rel(g.expand()), vec!["a.log", "link.log"]);
        let g = Glob::new(&format!("{}/**/*.log", root.display())).unwrap();
        assert_eq!(
            rel(g.expand()),
            vec!["a.log", "link.log", "x/c.log", "x/y/d.log", "x/y/z/e.log"]
        );
        let g = Glob::new(&format!("{}/*/*/*.log", root.display())).unwrap();
        assert_eq!(rel(g.expand()), vec!["x/y/d.log"]);
        let g = Glob::new(&format!("{}/a.log", root.display())).unwrap();
        assert_eq!(rel(g.expand()), vec!["a.log"]);
    }
}
