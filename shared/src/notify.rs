//! Notifications as people and subscription filters see them: a subject that SNS accepts, a
//! readable body, and message attributes to filter on. SNS limits are enforced here because
//! the local emulator does not enforce them the way AWS does.

use std::fmt::Write as _;

/// SNS refuses subjects of 100 characters or more.
pub const SUBJECT_MAX: usize = 99;
/// SNS counts the message and its attributes in bytes against 256 KiB.
pub const MESSAGE_MAX_BYTES: usize = 262_144;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }
}

/// A message ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub subject: String,
    pub body: String,
    /// String attributes, in the order they were added.
    pub attributes: Vec<(String, String)>,
}

impl Notification {
    /// Builds a notification whose subject and size obey SNS rules whatever the inputs hold.
    pub fn new(
        subject: &str,
        body: String,
        event_type: &str,
        pipeline: &str,
        level: Level,
    ) -> Self {
        let mut n = Notification {
            subject: clean_subject(subject),
            body,
            attributes: vec![
                ("event_type".into(), attribute_value(event_type)),
                ("pipeline".into(), attribute_value(pipeline)),
                ("severity".into(), level.as_str().into()),
            ],
        };
        n.fit();
        n
    }

    pub fn with_attribute(mut self, name: &str, value: &str) -> Self {
        self.attributes
            .push((name.to_string(), attribute_value(value)));
        self.fit();
        self
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Bytes SNS counts: the body plus every attribute's name, type and value.
    pub fn size_bytes(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + "String".len() + v.len())
                .sum::<usize>()
    }

    fn fit(&mut self) {
        if self.size_bytes() <= MESSAGE_MAX_BYTES {
            return;
        }
        let marker = "\n\n[message truncated to fit the SNS size limit]";
        let budget = MESSAGE_MAX_BYTES - (self.size_bytes() - self.body.len()) - marker.len();
        let mut cut = budget.min(self.body.len());
        while !self.body.is_char_boundary(cut) {
            cut -= 1;
        }
        self.body.truncate(cut);
        self.body.push_str(marker);
    }
}

/// Printable ASCII only, no line breaks, at most 99 characters, never empty.
pub fn clean_subject(raw: &str) -> String {
    let mut out = String::with_capacity(SUBJECT_MAX);
    let mut last_space = true;
    for c in raw.chars() {
        let c = if c.is_ascii_graphic() {
            c
        } else if c.is_whitespace() || c.is_control() {
            ' '
        } else {
            '?'
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        out.push(c);
    }
    let mut out = out.trim().to_string();
    if out.len() > SUBJECT_MAX {
        out.truncate(SUBJECT_MAX - 3);
        out = format!("{}...", out.trim_end());
    }
    if out.is_empty() {
        out = "Image pipeline notification".into();
    }
    out
}

/// SNS rejects empty attribute values; keep them short and on one line.
fn attribute_value(raw: &str) -> String {
    let v: String = raw.chars().filter(|c| !c.is_control()).take(256).collect();
    if v.trim().is_empty() {
        "unknown".into()
    } else {
        v
    }
}

/// A plain-text body made of a headline and `key: value` lines.
#[derive(Debug, Default)]
pub struct Body {
    text: String,
}

impl Body {
    pub fn new(headline: &str) -> Self {
        Body {
            text: format!("{headline}\n\n"),
        }
    }

    pub fn line(mut self, key: &str, value: impl std::fmt::Display) -> Self {
        let _ = writeln!(self.text, "{key}: {value}");
        self
    }

    pub fn paragraph(mut self, text: &str) -> Self {
        let _ = write!(self.text, "\n{text}\n");
        self
    }

    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_non_ascii_multiline_name_gives_a_valid_subject() {
        let name = format!(
            "Promoted {}é\nübersicht {}",
            "x".repeat(120),
            "y".repeat(20)
        );
        let s = clean_subject(&name);
        assert!(s.len() <= SUBJECT_MAX, "{}", s.len());
        assert!(s.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        assert!(s.ends_with("..."));
    }

    #[test]
    fn an_empty_subject_gets_a_default() {
        assert_eq!(clean_subject("\n\t "), "Image pipeline notification");
    }

    #[test]
    fn the_body_is_cut_by_bytes_with_attributes_counted() {
        let body = "é".repeat(200_000);
        let n = Notification::new("s", body, "image.promoted", "vscode-host", Level::Info);
        assert!(n.size_bytes() <= MESSAGE_MAX_BYTES, "{}", n.size_bytes());
        assert!(n
            .body
            .ends_with("[message truncated to fit the SNS size limit]"));
    }

    #[test]
    fn empty_attribute_values_become_unknown() {
        let n = Notification::new("s", "b".into(), "image.promoted", "", Level::Info);
        assert_eq!(n.attribute("pipeline"), Some("unknown"));
    }
}
