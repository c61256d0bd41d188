//! Path templates → operations.
//!
//! A segment tree: at each position a literal segment is tried before a
//! `{param}`, and the search backtracks, so `/contacts/search` reaches the
//! literal route while `/contacts/abc` reaches `/contacts/{contactId}`. A path
//! that matches some template but not for this method yields the methods that
//! would have matched (for 405 and `Allow`). A trailing slash is optional, as
//! in the real API (`/contacts/` and `/contacts` are one route).

use std::collections::HashMap;

use axum::http::Method;

#[derive(Default, Debug)]
struct Node {
    literal: HashMap<String, Node>,
    /// Lowercased literal → the literal as written, for routing that ignores
    /// case (Express's default); the first of two that differ only by case wins.
    folded: HashMap<String, String>,
    param: Option<(Vec<String>, Box<Node>)>,
    ops: Vec<(Method, usize)>,
}

/// The route table of a spec set.
#[derive(Default, Debug)]
pub struct Router {
    root: Node,
}

/// What a lookup found.
#[derive(Debug, PartialEq)]
pub enum Match {
    /// The operation's index and its path parameters (name, raw segment).
    Found(usize, Vec<(String, String)>),
    /// The path is known, but not with this method.
    WrongMethod(Vec<Method>),
    NotFound,
    /// Issue 14: asked with `Version: v3`, a path that only the dated
    /// versions serve, in a service the v3 files cover.
    RemovedInV3,
}

/// Splits a path into segments, ignoring a trailing slash and doubled slashes.
pub fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn param_name(segment: &str) -> Option<&str> {
    segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
}

impl Router {
    /// Adds a template; returns the index already there when the same
    /// method and shape were added before (the first one is kept).
    pub fn insert(&mut self, method: Method, template: &str, op: usize) -> Result<(), usize> {
        let mut node = &mut self.root;
        for seg in segments(template) {
            node = match param_name(seg) {
                Some(name) => {
                    let (names, child) = node.param.get_or_insert_with(|| (Vec::new(), Box::default()));
                    if !names.iter().any(|n| n == name) {
                        names.push(name.to_string());
                    }
                    child
                }
                None => {
                    node.folded.entry(seg.to_ascii_lowercase()).or_insert_with(|| seg.to_string());
                    node.literal.entry(seg.to_string()).or_default()
                }
            };
        }
        if let Some((_, existing)) = node.ops.iter().find(|(m, _)| *m == method) {
            return Err(*existing);
        }
        node.ops.push((method, op));
        Ok(())
    }

    /// Finds the operation for a request path (raw, still percent-encoded).
    pub fn find(&self, method: &Method, path: &str) -> Match {
        self.find_with(method, path, false)
    }

    /// As [`Router::find`]; with `any_case`, literal segments match whatever
    /// their case (parameters keep theirs).
    pub fn find_with(&self, method: &Method, path: &str, any_case: bool) -> Match {
        let segs: Vec<&str> = segments(path).collect();
        let mut nodes = Vec::new();
        collect(&self.root, &segs, any_case, &mut Vec::new(), &mut nodes);
        if nodes.is_empty() {
            return Match::NotFound;
        }
        for (node, params) in &nodes {
            if let Some((_, op)) = node.ops.iter().find(|(m, _)| m == method) {
                return Match::Found(*op, params.clone());
            }
        }
        // HEAD is answered like GET without a body.
        if *method == Method::HEAD {
            if let Match::Found(op, params) = self.find_with(&Method::GET, path, any_case) {
                return Match::Found(op, params);
            }
        }
        let mut allowed: Vec<Method> = nodes.iter().flat_map(|(n, _)| n.ops.iter().map(|(m, _)| m.clone())).collect();
        allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        allowed.dedup();
        Match::WrongMethod(allowed)
    }
}

type Params = Vec<(String, String)>;

/// Every node whose template matches, literal-first order, with the params
/// bound on the way there.
fn collect<'a>(node: &'a Node, segs: &[&str], any_case: bool, bound: &mut Params, out: &mut Vec<(&'a Node, Params)>) {
    let Some((first, rest)) = segs.split_first() else {
        if !node.ops.is_empty() {
            out.push((node, bound.clone()));
        }
        return;
    };
    let literal = match node.literal.get(*first) {
        Some(child) => Some(child),
        None if any_case => node.folded.get(&first.to_ascii_lowercase()).and_then(|written| node.literal.get(written)),
        None => None,
    };
    if let Some(child) = literal {
        collect(child, rest, any_case, bound, out);
    }
    if let Some((names, child)) = &node.param {
        let before = bound.len();
        for name in names {
            bound.push((name.clone(), (*first).to_string()));
        }
        collect(child, rest, any_case, bound, out);
        bound.truncate(before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let mut r = Router::default();
        r.insert(Method::GET, "/contacts/{contactId}", 0).unwrap();
        r.insert(Method::POST, "/contacts/search", 1).unwrap();
        r.insert(Method::GET, "/contacts/", 2).unwrap();
        r.insert(Method::PUT, "/contacts/{contactId}", 3).unwrap();
        r.insert(Method::GET, "/contacts/{contactId}/notes/{id}", 4).unwrap();
        r
    }

    #[test]
    fn literal_segment_beats_param_at_the_same_position() {
        assert_eq!(router().find(&Method::POST, "/contacts/search"), Match::Found(1, vec![]));
    }

    #[test]
    fn param_route_still_serves_other_methods_on_a_literal_lookalike() {
        let found = router().find(&Method::GET, "/contacts/search");
        assert_eq!(found, Match::Found(0, vec![("contactId".into(), "search".into())]));
    }

    #[test]
    fn params_are_bound_by_name() {
        let found = router().find(&Method::GET, "/contacts/abc/notes/n1");
        assert_eq!(found, Match::Found(4, vec![("contactId".into(), "abc".into()), ("id".into(), "n1".into())]));
    }

    #[test]
    fn trailing_slash_is_optional() {
        assert_eq!(router().find(&Method::GET, "/contacts"), Match::Found(2, vec![]));
        assert_eq!(router().find(&Method::GET, "/contacts/"), Match::Found(2, vec![]));
    }

    #[test]
    fn known_path_with_wrong_method_lists_the_allowed_ones() {
        assert_eq!(router().find(&Method::DELETE, "/contacts/x"), Match::WrongMethod(vec![Method::GET, Method::PUT]));
    }

    #[test]
    fn unknown_path_is_not_found() {
        assert_eq!(router().find(&Method::GET, "/nope/x/y"), Match::NotFound);
    }

    #[test]
    fn the_same_route_added_twice_keeps_the_first() {
        let mut r = router();
        assert_eq!(r.insert(Method::GET, "/contacts/{id}", 9), Err(0));
    }
}
