//! Log text to HTML: ANSI SGR colours and styles become `<span class="…">` (classes styled by
//! `static/dashboard.css`), everything else is escaped; other escape sequences are dropped.
//! The same renderer serves the finished page and every live-log event, so there is one
//! implementation and the browser only inserts HTML.

/// The SGR state carried from one piece of a log to the next.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ansi {
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
    fg: Option<u8>,
    bg: Option<u8>,
}

fn escape_into(c: char, out: &mut String) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        '\n' | '\t' => out.push(c),
        c if c.is_control() => {}
        c => out.push(c),
    }
}

impl Ansi {
    fn classes(&self) -> String {
        let mut c = Vec::new();
        if self.bold {
            c.push("b".to_string());
        }
        if self.dim {
            c.push("d".to_string());
        }
        if self.italic {
            c.push("i".to_string());
        }
        if self.underline {
            c.push("u".to_string());
        }
        if let Some(f) = self.fg {
            c.push(format!("f{f}"));
        }
        if let Some(b) = self.bg {
            c.push(format!("g{b}"));
        }
        c.join(" ")
    }

    fn apply(&mut self, params: &str) {
        let codes: Vec<u16> = params.split(';').map(|p| p.parse().unwrap_or(0)).collect();
        let mut i = 0;
        while i < codes.len() {
            match codes[i] {
                0 => *self = Ansi::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => (self.bold, self.dim) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                n @ 30..=37 => self.fg = Some((n - 30) as u8),
                n @ 90..=97 => self.fg = Some((n - 90 + 8) as u8),
                39 => self.fg = None,
                n @ 40..=47 => self.bg = Some((n - 40) as u8),
                n @ 100..=107 => self.bg = Some((n - 100 + 8) as u8),
                49 => self.bg = None,
                // 256-colour and true-colour: the low 16 map to classes, the rest are skipped.
                n @ (38 | 48) => {
                    let target = if n == 38 { &mut self.fg } else { &mut self.bg };
                    match codes.get(i + 1) {
                        Some(5) => {
                            *target = codes
                                .get(i + 2)
                                .and_then(|c| u8::try_from(*c).ok())
                                .filter(|c| *c < 16);
                            i += 2;
                        }
                        Some(2) => {
                            *target = None;
                            i += 4;
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }

    /// Renders `text` as HTML onto `out`, starting from (and updating) this state. Every span
    /// opened is closed at the end, so each rendered piece is well-formed on its own.
    pub fn render(&mut self, text: &str, out: &mut String) {
        let mut open = false;
        let start = |state: &Ansi, out: &mut String, open: &mut bool| {
            let classes = state.classes();
            if !classes.is_empty() {
                out.push_str("<span class=\"");
                out.push_str(&classes);
                out.push_str("\">");
                *open = true;
            }
        };
        start(self, out, &mut open);
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\u{1b}' {
                escape_into(c, out);
                continue;
            }
            match chars.peek() {
                Some('[') => {
                    chars.next();
                    let mut params = String::new();
                    let mut fin = None;
                    for p in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&p) {
                            fin = Some(p);
                            break;
                        }
                        if params.len() < 64 {
                            params.push(p);
                        }
                    }
                    if fin == Some('m') {
                        if open {
                            out.push_str("</span>");
                            open = false;
                        }
                        self.apply(&params);
                        start(self, out, &mut open);
                    }
                }
                Some(']') => {
                    // OSC: up to BEL or ST.
                    while let Some(p) = chars.next() {
                        if p == '\u{7}' || (p == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {
                    chars.next();
                }
            }
        }
        if open {
            out.push_str("</span>");
        }
    }
}

/// Renders log lines: each `<RFC 3339 time> text` line gets its time in a `ts` span.
pub fn render_log(state: &mut Ansi, text: &str, out: &mut String) {
    for line in text.split_inclusive('\n') {
        let stamp_len = line.find(' ').filter(|&i| {
            (20..=35).contains(&i) && line.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        });
        let body = match stamp_len {
            Some(i) => {
                out.push_str("<span class=\"ts\">");
                out.push_str(&line[..i]);
                out.push_str("</span>");
                &line[i..]
            }
            None => line,
        };
        state.render(body, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(text: &str) -> String {
        let mut out = String::new();
        Ansi::default().render(text, &mut out);
        out
    }

    #[test]
    fn colours_become_classes_and_everything_is_escaped() {
        assert_eq!(html("plain <b>&\"'"), "plain &lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(
            html("\u{1b}[31mred\u{1b}[0m ok"),
            "<span class=\"f1\">red</span> ok"
        );
        assert_eq!(
            html("\u{1b}[1;92;44mx\u{1b}[39my"),
            "<span class=\"b f10 g4\">x</span><span class=\"b g4\">y</span>"
        );
        assert_eq!(
            html("\u{1b}[38;5;3mz\u{1b}[38;2;1;2;3mw"),
            "<span class=\"f3\">z</span>w"
        );
        // Cursor movement, OSC titles and stray controls are dropped.
        assert_eq!(html("a\u{1b}[2Kb\u{1b}]0;title\u{7}c\r\u{0}"), "abc");
        assert_eq!(html("\u{1b}[31"), "");
    }

    #[test]
    fn state_carries_across_pieces_and_each_piece_is_well_formed() {
        let mut s = Ansi::default();
        let mut a = String::new();
        s.render("\u{1b}[33mwarn", &mut a);
        let mut b = String::new();
        s.render(" still\u{1b}[0m done", &mut b);
        assert_eq!(a, "<span class=\"f3\">warn</span>");
        assert_eq!(b, "<span class=\"f3\"> still</span> done");
        let mut out = String::new();
        render_log(
            &mut Ansi::default(),
            "2026-12-02T10:00:00.123Z hello\nno stamp\n",
            &mut out,
        );
        assert_eq!(
            out,
            "<span class=\"ts\">2026-12-02T10:00:00.123Z</span> hello\nno stamp\n"
        );
    }
}
