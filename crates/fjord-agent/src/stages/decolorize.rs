//! The `decolorize` stage: removes ANSI color and cursor escape sequences from the line.

use std::sync::LazyLock;

use regex::Regex;

use super::{Entry, FnStage, Stage};

// CSI sequences (ESC [ params final-byte) and the two-byte ESC sequences terminals use.
static ANSI: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\x1b\[[0-9;:?<=>]*[ -/]*[@-~]|\x1b[@-Z\\-_]").ok());

pub(crate) fn decolorize() -> Box<dyn Stage> {
    Box::new(FnStage(|e: &mut Entry| {
        if e.line.contains('\x1b')
            && let Some(re) = ANSI.as_ref()
        {
            e.line = re.replace_all(&e.line, "").into_owned();
        }
        true
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn strips_colors() {
        let mut p = pipeline("[{decolorize: {}}]");
        assert_eq!(
            p.process_one(entry("\x1b[0;32mok\x1b[0m done \x1b[1m!"))[0].line,
            "ok done !"
        );
        let mut p = pipeline("[{decolorize: }]");
        assert_eq!(p.process_one(entry("plain"))[0].line, "plain");
    }
}
