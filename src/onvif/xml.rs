//! Reading what cameras send: one bounded parse (roxmltree, no DTD, a node cap) and a few
//! lookups by local name. Every reply parser of the ONVIF room goes through here.
//!
//! Rules (see `docs/design/onvif.md`, "Parsing"):
//! 1. Input is already capped by its transport (a UDP datagram, or an HTTP body read with a
//!    limit); [`MAX_NODES`] caps the tree built from it, so memory is bounded by both.
//! 2. No DTD: entity expansion (the "billion laughs") is refused before it starts.
//! 3. Elements are matched by local name, ignoring prefixes and namespaces: cameras use
//!    every prefix imaginable and two WS-Discovery namespace versions exist. The structure
//!    around an element (its parent chain) is what identifies it.
//! 4. Texts kept from a reply are cut to [`MAX_TEXT`] bytes; lists are cut by their callers.
//! 5. Walks are iterative (roxmltree's iterators), so a deeply nested reply cannot overflow
//!    the stack.

use roxmltree::{Document, Node, ParsingOptions};
use std::fmt;

/// Most XML nodes (elements, texts, comments) one reply may have. A GetProfiles reply of a
/// camera with four profiles, PTZ and analytics has about 1,500.
pub const MAX_NODES: u32 = 20_000;

/// Longest text kept from a reply (a name, an URL, a scope), in bytes.
pub const MAX_TEXT: usize = 512;

/// A reply that cannot be read: what was wrong, without the reply (which may hold anything).
/// Callers add which camera and which call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Malformed {}

/// Shorthand for a parse failure with a fixed description.
pub fn malformed(what: &str) -> Malformed {
    Malformed(what.to_owned())
}

/// Parses `text` with the bounds above.
pub fn parse(text: &str) -> Result<Document<'_>, Malformed> {
    let opt = ParsingOptions { allow_dtd: false, nodes_limit: MAX_NODES, ..ParsingOptions::default() };
    Document::parse_with_options(text, opt).map_err(|e| Malformed(format!("not well-formed XML: {e}")))
}

/// The SOAP `Body` of an envelope (either SOAP version).
pub fn body<'a, 'i>(doc: &'a Document<'i>) -> Result<Node<'a, 'i>, Malformed> {
    let env = doc.root_element();
    if env.tag_name().name() != "Envelope" {
        return Err(malformed("not a SOAP envelope"));
    }
    child(env, "Body").ok_or_else(|| malformed("SOAP envelope without a Body"))
}

/// The first element child of `n` named `local`.
pub fn child<'a, 'i>(n: Node<'a, 'i>, local: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.is_element() && c.tag_name().name() == local)
}

/// Every element child of `n` named `local`.
pub fn children<'a, 'i: 'a>(n: Node<'a, 'i>, local: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    n.children().filter(move |c| c.is_element() && c.tag_name().name() == local)
}

/// Follows a chain of element children: `path(n, &["A", "B"])` is `n/A/B`.
pub fn path<'a, 'i>(n: Node<'a, 'i>, names: &[&str]) -> Option<Node<'a, 'i>> {
    names.iter().try_fold(n, |n, name| child(n, name))
}

/// The first element among `n`'s descendants (itself included) named `local`.
pub fn find<'a, 'i>(n: Node<'a, 'i>, local: &str) -> Option<Node<'a, 'i>> {
    n.descendants().find(|c| c.is_element() && c.tag_name().name() == local)
}

/// The element's own text, trimmed and cut to [`MAX_TEXT`] bytes (at a character boundary).
pub fn text(n: Node<'_, '_>) -> String {
    bounded(n.text().unwrap_or("").trim(), MAX_TEXT)
}

/// The text of `n/names...`, if that element exists and its text is not empty.
pub fn text_at(n: Node<'_, '_>, names: &[&str]) -> Option<String> {
    path(n, names).map(text).filter(|t| !t.is_empty())
}

/// An attribute by local name (ignoring its namespace), cut to [`MAX_TEXT`] bytes.
pub fn attr(n: Node<'_, '_>, local: &str) -> Option<String> {
    n.attributes().find(|a| a.name() == local).map(|a| bounded(a.value().trim(), MAX_TEXT))
}

/// `s` cut to at most `max` bytes at a character boundary.
pub fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Escapes text for an XML element or attribute value we send.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_local_name_whatever_the_prefix() {
        let x = r#"<s:Envelope xmlns:s="urn:s" xmlns:a="urn:a"><s:Body><a:R><b:X xmlns:b="urn:b"> hi </b:X></a:R></s:Body></s:Envelope>"#;
        let doc = parse(x).unwrap();
        let b = body(&doc).unwrap();
        assert_eq!(text_at(b, &["R", "X"]).as_deref(), Some("hi"));
        assert!(text_at(b, &["R", "Y"]).is_none());
        assert_eq!(find(b, "X").map(text).as_deref(), Some("hi"));
    }

    #[test]
    fn refuses_dtd_and_bounds_nodes_and_text() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><l>&b;</l>"#;
        assert!(parse(bomb).is_err());
        let many = format!("<a>{}</a>", "<b/>".repeat(MAX_NODES as usize));
        assert!(parse(&many).is_err());
        let deep = format!("{}{}", "<a>".repeat(30_000), "</a>".repeat(30_000));
        assert!(parse(&deep).is_err(), "over the node cap");
        let deep = format!("{}{}", "<a>".repeat(15_000), "</a>".repeat(15_000));
        let doc = parse(&deep).unwrap();
        assert!(find(doc.root_element(), "b").is_none(), "walks a deep tree without recursion");
        assert_eq!(bounded("ééé", 3), "é");
        assert_eq!(text(parse(&format!("<a>{}</a>", "x".repeat(10_000))).unwrap().root_element()).len(), MAX_TEXT);
    }

    #[test]
    fn escapes_what_we_send() {
        assert_eq!(escape(r#"a<b>&"c"'"#), "a&lt;b&gt;&amp;&quot;c&quot;&apos;");
    }
}
