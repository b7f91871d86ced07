//! Recipe badges: the SVG (`/badge/{recipe}.svg`, shields.io's flat look, widths measured from
//! Verdana 11px advance widths so any text fits) and the shields.io endpoint JSON
//! (`/badge/{recipe}.json`). Pure rendering; the routes are in `pages/badge.rs`.

use serde::Serialize;

/// A recipe's state as a badge shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadgeState {
    /// The latest default-branch run with a verdict succeeded.
    Passing,
    /// It failed, errored or timed out.
    Failing,
    /// No verdict yet, a run is in progress.
    Running,
    /// Nothing known (no runs, or an unknown recipe).
    Unknown,
}

impl BadgeState {
    /// The word on the badge, also the CSS class of a row.
    pub fn as_str(self) -> &'static str {
        match self {
            BadgeState::Passing => "passing",
            BadgeState::Failing => "failing",
            BadgeState::Running => "running",
            BadgeState::Unknown => "unknown",
        }
    }

    /// The badge colour (hex, shields.io's palette).
    pub fn colour(self) -> &'static str {
        match self {
            BadgeState::Passing => "#4c1",
            BadgeState::Failing => "#e05d44",
            BadgeState::Running => "#dfb317",
            BadgeState::Unknown => "#9f9f9f",
        }
    }

    fn shields_colour(self) -> &'static str {
        match self {
            BadgeState::Passing => "brightgreen",
            BadgeState::Failing => "red",
            BadgeState::Running => "yellow",
            BadgeState::Unknown => "lightgrey",
        }
    }
}

/// Verdana 11px advance widths of ASCII 32..=126, in tenths of a pixel.
const WIDTHS: [u16; 95] = [
    39, 43, 51, 90, 70, 123, 80, 30, 50, 50, 70, 90, 40, 50, 40, 50, // ' '..'/'
    70, 70, 70, 70, 70, 70, 70, 70, 70, 70, 50, 50, 90, 90, 90, 60, // '0'..'?'
    110, 75, 75, 77, 85, 70, 63, 85, 83, 46, 50, 76, 61, 93, 82, 87, // '@'..'O'
    66, 87, 77, 75, 68, 81, 75, 109, 75, 68, 75, 50, 50, 50, 90, 70, // 'P'..'_'
    70, 66, 69, 57, 69, 66, 39, 69, 70, 30, 38, 65, 30, 107, 70, 67, // '`'..'o'
    69, 69, 47, 57, 43, 70, 65, 90, 65, 65, 58, 70, 50, 70, 90, // 'p'..'~'
];

/// The rendered width of `text` in Verdana 11px, in pixels (rounded up). Characters outside
/// ASCII count as wide as the widest Latin letter, or twice that for wide scripts and emoji.
pub fn text_width(text: &str) -> u32 {
    let tenths: u32 = text
        .chars()
        .map(|c| match c {
            ' '..='~' => u32::from(WIDTHS[c as usize - 32]),
            c if c.is_control() => 0,
            c if (c as u32) >= 0x1100 => 140,
            _ => 110,
        })
        .sum();
    tenths.div_ceil(10)
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The message part: `passing · level 4`, or the state alone without a level.
pub fn message(state: BadgeState, level: Option<u8>) -> String {
    match level {
        Some(l) => format!("{} · level {l}", state.as_str()),
        None => state.as_str().to_string(),
    }
}

/// The badge SVG with `label` on the left and the state (and level) on the right.
pub fn svg(label: &str, state: BadgeState, level: Option<u8>) -> String {
    let msg = message(state, level);
    let lw = text_width(label) + 10;
    let mw = text_width(&msg) + 10;
    let w = lw + mw;
    let (label, msg) = (escape(label), escape(&msg));
    let colour = state.colour();
    // Text is drawn at 10x scale, as shields.io does, for sub-pixel positioning.
    let (lx, mx) = (lw * 5, lw * 10 + mw * 5);
    let (ltl, mtl) = ((lw - 10) * 10, (mw - 10) * 10);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" aria-label="{label}: {msg}"><title>{label}: {msg}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{w}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{mw}" height="20" fill="{colour}"/><rect width="{w}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="110"><text aria-hidden="true" x="{lx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{ltl}">{label}</text><text x="{lx}" y="140" transform="scale(.1)" fill="#fff" textLength="{ltl}">{label}</text><text aria-hidden="true" x="{mx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{mtl}">{msg}</text><text x="{mx}" y="140" transform="scale(.1)" fill="#fff" textLength="{mtl}">{msg}</text></g></svg>"##
    )
}

/// The shields.io endpoint body (`https://img.shields.io/endpoint?url=…`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    schema_version: u8,
    label: String,
    message: String,
    color: &'static str,
}

/// The endpoint JSON for a badge.
pub fn endpoint(label: &str, state: BadgeState, level: Option<u8>) -> Endpoint {
    Endpoint {
        schema_version: 1,
        label: label.to_string(),
        message: message(state, level),
        color: state.shields_colour(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_grow_with_text_and_wide_characters_count_double() {
        assert_eq!(text_width(""), 0);
        assert!(text_width("passing · level 8") > text_width("passing"));
        assert!(text_width("WWWW") > text_width("iiii") * 3);
        assert_eq!(text_width("字"), 14);
        assert_eq!(text_width("\u{7}"), 0);
        // Every printable ASCII character has a width.
        assert!((' '..='~').all(|c| text_width(&c.to_string()) > 0));
    }

    #[test]
    fn the_svg_is_sized_to_its_text_and_escapes_it() {
        let a = svg("cc-ci", BadgeState::Passing, Some(4));
        let b = svg("cc-ci", BadgeState::Failing, Some(4));
        let short = svg("cc-ci", BadgeState::Passing, None);
        let width = |s: &str| -> u32 {
            let rest = &s[s.find("width=\"").unwrap() + 7..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        };
        assert_eq!(
            width(&a),
            text_width("cc-ci") + text_width("passing · level 4") + 20
        );
        assert!(width(&short) < width(&a));
        assert_eq!(
            width(&b),
            text_width("cc-ci") + text_width("failing · level 4") + 20
        );
        assert!(a.contains("#4c1") && b.contains("#e05d44"));
        let evil = svg("<script>&\"", BadgeState::Unknown, None);
        assert!(!evil.contains("<script>"), "{evil}");
        assert!(evil.contains("&lt;script&gt;&amp;&quot;"));
        assert_eq!(evil.matches("<text").count(), 4);
    }

    #[test]
    fn the_endpoint_json_follows_shields_schema() {
        let json = serde_json::to_value(endpoint("cc-ci", BadgeState::Running, None)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"schemaVersion": 1, "label": "cc-ci", "message": "running", "color": "yellow"})
        );
    }
}
