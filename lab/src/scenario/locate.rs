//! Where in a scenario file a dotted key lives (`virtual_server.real_server[1].weight`
//! → line 23, column 10), so that a value which parses but makes no sense is
//! reported with its line and column, as a parse error is.
//!
//! The file is read a second time with toml's span-keeping parser; a key the
//! file does not spell out (a default that conflicts with another value) is
//! placed at the deepest table that is there.

use toml::de::{DeTable, DeValue};

/// 1-based line and column of the value of `key` in `text`, or of its
/// deepest enclosing table that the file contains.
pub fn locate(text: &str, key: &str) -> Option<(usize, usize)> {
    let doc = DeTable::parse(text).ok()?;
    let mut span: Option<std::ops::Range<usize>> = None;
    let mut table: &DeTable<'_> = doc.get_ref();
    let mut segments = key.split('.').peekable();
    while let Some(segment) = segments.next() {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let Some((_, value)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name) else {
            break;
        };
        let value = match (value.get_ref(), index) {
            (DeValue::Array(items), Some(i)) => match items.get(i) {
                Some(item) => item,
                None => {
                    span = Some(value.span());
                    break;
                }
            },
            _ => value,
        };
        span = Some(value.span());
        match value.get_ref() {
            DeValue::Table(inner) if segments.peek().is_some() => table = inner,
            _ => break,
        }
    }
    let start = span?.start.min(text.len());
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
description = \"x\"

[virtual_server]
vip = \"192.168.122.1\"
delay_loop = inf

[[virtual_server.real_server]]
address = \"172.22.35.1\"
weight = 1

[[virtual_server.real_server]]
address = \"172.22.35.2\"
weight = 70000
TCP_CHECK = { connect_timeout = 1e300, retry = 3 }

[load]
duration = \"3s\"
";

    #[test]
    fn keys_are_found_at_their_values() {
        assert_eq!(locate(TEXT, "virtual_server.delay_loop"), Some((5, 14)));
        assert_eq!(
            locate(TEXT, "virtual_server.real_server[1].weight"),
            Some((13, 10))
        );
        assert_eq!(
            locate(
                TEXT,
                "virtual_server.real_server[1].TCP_CHECK.connect_timeout"
            ),
            Some((14, 33))
        );
        assert_eq!(locate(TEXT, "description"), Some((1, 15)));
    }

    #[test]
    fn a_key_the_file_lacks_points_at_its_table() {
        let (line, _) = locate(TEXT, "load.rounds").expect("the [load] table");
        assert!((16..=17).contains(&line), "line {line}");
        assert_eq!(locate("", "load.rounds"), None);
        assert_eq!(locate("not = [valid", "x"), None);
    }
}
