//! oslo.policy's check-string language: the parser of `oslo_policy/_parser.py` and the checks
//! of `oslo_policy/_checks.py`.
//!
//! # The language
//!
//! A check string is whitespace-separated tokens:
//!
//! | token | meaning |
//! |---|---|
//! | `@` (or the empty string) | always true |
//! | `!` | always false |
//! | `rule:NAME` | the check of the rule `NAME`; false when there is no such rule |
//! | `role:NAME` | the credential `roles` holds `NAME`, compared case-insensitively |
//! | `KEY:VALUE` | the credential `KEY` equals `VALUE` (a list credential: holds it) |
//! | `LITERAL:VALUE` | `True`, `False`, `None`, an integer or a quoted string, equals `VALUE` |
//! | `not`, `and`, `or` (any case), `(`, `)` | logic: `not` before `and` before `or` |
//!
//! `VALUE` (and the `NAME` of `role:`) may contain `%(KEY)s`, replaced by the target's `KEY`
//! (Python's `%` formatting); a target without `KEY` makes the check false. `%%` is a `%`.
//! Parentheses may be glued to tokens (`(role:a`, `role:b))`): oslo's tokenizer strips them
//! from both ends of every whitespace-separated word.
//!
//! The parser is oslo's shift-reduce machine ([`ParseState`] in `_parser.py`), step for step,
//! so that a check string parses here exactly when oslo parses it, into the same tree; the
//! [`std::fmt::Display`] of a [`Check`] is oslo's `str()` of that tree. The old list-of-lists
//! form (`[["role:a", "role:b"], ["role:c"]]`: the outer list is an `or`, each inner list an
//! `and`) is [`parse_list`].
//!
//! # Where this is stricter than oslo
//!
//! oslo's parser never fails: a string it cannot parse becomes `!` (with a log line), and
//! some checks it accepts raise an exception when enforced. Here both are errors, reported
//! when the policy is loaded:
//! - a check string that does not reduce to one check (`role:a role:b`, `(role:a`, `and`, a
//!   quoted string where a check belongs, a blank string);
//! - a token without `:` other than `@` and `!`;
//! - `http:` and `https:` checks (oslo asks a remote server; not supported);
//! - a `KEY` that is neither a literal this module understands (`True`, `False`, `None`,
//!   a decimal integer, a quoted string without backslashes) nor a dotted name of Python
//!   identifiers (oslo evaluates `1x:...` or `a(b:...` with `ast.literal_eval` and raises);
//! - a `%` in `VALUE` other than `%(KEY)s` and `%%` (Python would raise or print the whole
//!   target);
//! - a tree nested deeper than [`MAX_DEPTH`] (oslo would recurse until Python's limit).
//!
//! # Evaluation
//!
//! [`evaluate`] walks the tree against an [`Env`]: the credentials (oslo.context's
//! `to_policy_values()`), the target and the other rules. A credential or target value that
//! is absent (Python's `None`) matches nothing: oslo would compare `str(None)`, i.e. `"None"`;
//! here `project_id:%(project_id)s` is false for a caller and a target without a project
//! rather than true.

use std::borrow::Cow;
use std::fmt;

/// Deepest nesting of `not`, `and` and `or` in one check string. Placement's rules nest two
/// levels; oslo has no bound of its own (Python's recursion limit, 1000, ends it).
pub(crate) const MAX_DEPTH: u32 = 32;

/// Deepest chain of `rule:` references an evaluation follows. [`crate::policy::Policy`]
/// refuses longer chains when it loads, so this guard only stops a bug from overflowing
/// the stack.
pub(crate) const MAX_RULE_DEPTH: u32 = 64;

/// A parsed check string (oslo's `BaseCheck` tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// `@` (oslo's `TrueCheck`).
    True,
    /// `!` (`FalseCheck`).
    False,
    /// `rule:NAME` (`RuleCheck`).
    Rule(String),
    /// `role:NAME` (`RoleCheck`).
    Role(Template),
    /// `KEY:VALUE` (`GenericCheck`).
    Generic {
        /// `KEY` as written (for `Display`).
        raw_kind: String,
        kind: Kind,
        value: Template,
    },
    /// `not CHECK` (`NotCheck`).
    Not(Box<Check>),
    /// `A and B and ...` (`AndCheck`).
    And(Vec<Check>),
    /// `A or B or ...` (`OrCheck`).
    Or(Vec<Check>),
}

/// The left side of a generic `KEY:VALUE` check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A Python literal, as `str()` of its value prints it (`True`, `42`, `Member`).
    Literal(String),
    /// A credential, by its dotted path (`project_id`, `token.user.id`).
    Credential(Vec<String>),
}

/// The right side of a check, with its `%(KEY)s` substitutions from the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    raw: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// `%(KEY)s`.
    Target(String),
}

/// A credential's value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Credential<'a> {
    /// Not set (Python's `None`, or a key the credentials lack).
    Absent,
    One(&'a str),
    /// A list (`roles`, `service_roles`): a check matches any element.
    Many(&'a [String]),
}

/// What a check is evaluated against.
pub(crate) trait Env {
    /// The credential at a dotted path.
    fn credential(&self, path: &[String]) -> Credential<'_>;
    /// The target's value for `key`, if it has one.
    fn target(&self, key: &str) -> Option<&str>;
    /// The check of another rule.
    fn rule(&self, name: &str) -> Option<&Check>;
}

/// An evaluation followed more than [`MAX_RULE_DEPTH`] `rule:` references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooDeep;

/// Evaluates `check`; `rule_depth` is the number of `rule:` references followed so far.
pub(crate) fn evaluate(check: &Check, env: &dyn Env, rule_depth: u32) -> Result<bool, TooDeep> {
    Ok(match check {
        Check::True => true,
        Check::False => false,
        Check::Rule(name) => {
            if rule_depth >= MAX_RULE_DEPTH {
                return Err(TooDeep);
            }
            match env.rule(name) {
                Some(c) => evaluate(c, env, rule_depth + 1)?,
                // oslo: "We don't have any matching rule; fail closed".
                None => false,
            }
        }
        Check::Role(name) => name.render(env).is_some_and(|name| {
            let name = name.to_lowercase();
            match env.credential(&[String::from("roles")]) {
                Credential::Many(roles) => roles.iter().any(|r| r.to_lowercase() == name),
                Credential::One(role) => role.to_lowercase() == name,
                Credential::Absent => false,
            }
        }),
        Check::Generic { kind, value, .. } => value.render(env).is_some_and(|value| match kind {
            Kind::Literal(literal) => *literal == value,
            Kind::Credential(path) => match env.credential(path) {
                Credential::One(c) => c == value,
                Credential::Many(list) => list.iter().any(|c| *c == value),
                Credential::Absent => false,
            },
        }),
        Check::Not(inner) => !evaluate(inner, env, rule_depth)?,
        Check::And(checks) => {
            for c in checks {
                if !evaluate(c, env, rule_depth)? {
                    return Ok(false);
                }
            }
            true
        }
        Check::Or(checks) => {
            for c in checks {
                if evaluate(c, env, rule_depth)? {
                    return Ok(true);
                }
            }
            false
        }
    })
}

impl Check {
    /// Calls `f` with the name of every `rule:` reference in the tree.
    pub(crate) fn for_each_reference<'a>(&'a self, f: &mut dyn FnMut(&'a str)) {
        match self {
            Check::Rule(name) => f(name),
            Check::Not(inner) => inner.for_each_reference(f),
            Check::And(cs) | Check::Or(cs) => cs.iter().for_each(|c| c.for_each_reference(f)),
            Check::True | Check::False | Check::Role(_) | Check::Generic { .. } => {}
        }
    }
}

/// oslo's `str()` of a check tree.
impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, cs: &[Check], op: &str| {
            f.write_str("(")?;
            for (i, c) in cs.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str(")")
        };
        match self {
            Check::True => f.write_str("@"),
            Check::False => f.write_str("!"),
            Check::Rule(name) => write!(f, "rule:{name}"),
            Check::Role(t) => write!(f, "role:{}", t.raw),
            Check::Generic {
                raw_kind, value, ..
            } => write!(f, "{raw_kind}:{}", value.raw),
            Check::Not(inner) => write!(f, "not {inner}"),
            Check::And(cs) => join(f, cs, "and"),
            Check::Or(cs) => join(f, cs, "or"),
        }
    }
}

impl Template {
    /// Parses the `%` substitutions of `raw` (a subset of Python's `%` formatting).
    fn parse(raw: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = raw.char_indices().peekable();
        while let Some((_, c)) = chars.next() {
            if c != '%' {
                text.push(c);
                continue;
            }
            match chars.next() {
                Some((_, '%')) => text.push('%'),
                Some((open, '(')) => {
                    // Python's key runs to the matching parenthesis.
                    let mut nesting = 1usize;
                    let mut close = None;
                    for (i, k) in chars.by_ref() {
                        match k {
                            '(' => nesting += 1,
                            ')' => {
                                nesting -= 1;
                                if nesting == 0 {
                                    close = Some(i);
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    let Some(close) = close else {
                        return Err(format!("unclosed \"%(\" in {raw:?}"));
                    };
                    if !matches!(chars.next(), Some((_, 's'))) {
                        return Err(format!(
                            "only %(name)s substitutions are supported, in {raw:?}"
                        ));
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Target(raw[open + 1..close].to_string()));
                }
                _ => return Err(format!("a \"%\" must start %(name)s or %%, in {raw:?}")),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template {
            raw: raw.to_string(),
            parts,
        })
    }

    /// The value with the target's values substituted; `None` if the target lacks a key.
    fn render<'a>(&'a self, env: &'a dyn Env) -> Option<Cow<'a, str>> {
        match self.parts.as_slice() {
            [] => Some(Cow::Borrowed("")),
            [Part::Text(t)] => Some(Cow::Borrowed(t)),
            [Part::Target(k)] => env.target(k).map(Cow::Borrowed),
            parts => {
                let mut out = String::new();
                for p in parts {
                    match p {
                        Part::Text(t) => out.push_str(t),
                        Part::Target(k) => out.push_str(env.target(k)?),
                    }
                }
                Some(Cow::Owned(out))
            }
        }
    }
}

/// A check that failed to parse: what is wrong, in words for an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError(pub(crate) String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(message.into()))
}

/// Parses a check string (oslo's `_parse_text_rule`).
pub(crate) fn parse(text: &str) -> Result<Check, ParseError> {
    if text.is_empty() {
        return Ok(Check::True);
    }
    let mut state = ParseState::default();
    for token in tokenize(text)? {
        state.shift(token)?;
    }
    state.result()
}

/// Parses the old list-of-lists form (oslo's `_parse_list_rule`): the outer list is joined by
/// `or`, each inner list (or bare string) by `and`; each string is one check, not a check
/// string (`role:a or role:b` in it is the role named `a or role:b`). An empty list is `@`;
/// a list of empty lists is `!`.
pub(crate) fn parse_list(rule: &[Vec<String>]) -> Result<Check, ParseError> {
    if rule.is_empty() {
        return Ok(Check::True);
    }
    let mut any = Vec::new();
    for inner in rule.iter().filter(|i| !i.is_empty()) {
        let mut all = inner
            .iter()
            .map(|c| parse_check(c))
            .collect::<Result<Vec<_>, _>>()?;
        any.push(if all.len() == 1 {
            all.remove(0)
        } else {
            Check::And(all)
        });
    }
    Ok(match any.len() {
        0 => Check::False,
        1 => any.remove(0),
        _ => Check::Or(any),
    })
}

/// One token of the check-string language (oslo's `Token` subclasses).
#[derive(Debug)]
enum Token {
    Check(Node),
    AndExpr(Vec<Node>),
    OrExpr(Vec<Node>),
    And,
    Or,
    Not,
    LeftParen,
    RightParen,
}

/// A check with the depth of its tree (1 for a leaf).
#[derive(Debug)]
struct Node {
    check: Check,
    depth: u32,
}

impl Node {
    fn leaf(check: Check) -> Node {
        Node { check, depth: 1 }
    }

    /// `op` over `children`, refused if deeper than [`MAX_DEPTH`].
    fn join(children: Vec<Node>, op: fn(Vec<Check>) -> Check) -> Result<Node, ParseError> {
        let depth = 1 + children.iter().map(|n| n.depth).max().unwrap_or(0);
        let node = Node {
            check: op(children.into_iter().map(|n| n.check).collect()),
            depth,
        };
        node.bounded()
    }

    fn bounded(self) -> Result<Node, ParseError> {
        if self.depth > MAX_DEPTH {
            return err(format!("nested more than {MAX_DEPTH} levels deep"));
        }
        Ok(self)
    }
}

/// Python's `str.isspace()`, which `re.split(r'\s+')` splits on: Unicode white space plus
/// the information separators U+001C–U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// oslo's `_parse_tokenize`.
fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    for word in text.split(is_python_space).filter(|w| !w.is_empty()) {
        let clean = word.trim_start_matches('(');
        tokens.extend((0..word.len() - clean.len()).map(|_| Token::LeftParen));
        if clean.is_empty() {
            continue;
        }
        let tok = clean;
        let clean = tok.trim_end_matches(')');
        let trail = tok.len() - clean.len();
        if clean.eq_ignore_ascii_case("and") {
            tokens.push(Token::And);
        } else if clean.eq_ignore_ascii_case("or") {
            tokens.push(Token::Or);
        } else if clean.eq_ignore_ascii_case("not") {
            tokens.push(Token::Not);
        } else if !clean.is_empty() {
            if is_quoted(tok) {
                // oslo makes a string token of it, which no rule reduces.
                return err(format!("{tok}: a quoted string is not a check"));
            }
            tokens.push(Token::Check(Node::leaf(parse_check(clean)?)));
        }
        tokens.extend((0..trail).map(|_| Token::RightParen));
    }
    Ok(tokens)
}

/// `'...'` or `"..."` (at least two characters).
fn is_quoted(tok: &str) -> bool {
    let mut chars = tok.chars();
    match (chars.next(), chars.next_back()) {
        (Some(a), Some(b)) => a == b && (a == '\'' || a == '"'),
        _ => false,
    }
}

/// One check: `@`, `!` or `KIND:MATCH` (oslo's `_parse_check`).
fn parse_check(text: &str) -> Result<Check, ParseError> {
    match text {
        "!" => return Ok(Check::False),
        "@" => return Ok(Check::True),
        _ => {}
    }
    let Some((kind, value)) = text.split_once(':') else {
        return err(format!(
            "{text:?} is not a check (KIND:VALUE, \"@\" or \"!\")"
        ));
    };
    let template = |v: &str| Template::parse(v).map_err(ParseError);
    match kind {
        "rule" => Ok(Check::Rule(value.to_string())),
        "role" => Ok(Check::Role(template(value)?)),
        "http" | "https" => err(format!(
            "{text:?}: {kind}: checks (asking a remote server) are not supported"
        )),
        _ => Ok(Check::Generic {
            raw_kind: kind.to_string(),
            kind: parse_kind(kind).map_err(|m| ParseError(format!("{text:?}: {m}")))?,
            value: template(value)?,
        }),
    }
}

/// Python's keywords: `ast.literal_eval` fails on them with a `SyntaxError`.
const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// The `KIND` of a generic check: oslo tries `ast.literal_eval(kind)` and compares with
/// `str()` of the value; if that is no literal, `KIND` is a dotted path into the credentials.
fn parse_kind(kind: &str) -> Result<Kind, String> {
    if matches!(kind, "True" | "False" | "None") {
        return Ok(Kind::Literal(kind.to_string()));
    }
    let first = kind.chars().next();
    if let Some(quote @ ('\'' | '"')) = first {
        let inner = kind
            .strip_prefix(quote)
            .and_then(|k| k.strip_suffix(quote))
            .filter(|i| !i.contains(['\'', '"', '\\']));
        return inner
            .map(|i| Kind::Literal(i.to_string()))
            .ok_or_else(|| format!("{kind} is not a supported string literal"));
    }
    if first.is_some_and(|c| c.is_ascii_digit() || c == '+' || c == '-' || c == '.') {
        return integer_literal(kind)
            .map(Kind::Literal)
            .ok_or_else(|| format!("{kind} is not a supported literal (a decimal integer)"));
    }
    let path: Vec<String> = kind.split('.').map(str::to_string).collect();
    if path.iter().all(|s| is_identifier(s)) {
        Ok(Kind::Credential(path))
    } else {
        Err(format!(
            "{kind:?} is neither a credential name nor a literal"
        ))
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !PYTHON_KEYWORDS.contains(&s)
}

/// `str(ast.literal_eval(s))` for a decimal integer with an optional sign (`+07` is a
/// `SyntaxError` in Python: no leading zeros except in zero itself).
fn integer_literal(s: &str) -> Option<String> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Some("0".to_string());
    }
    if significant.len() != digits.len() {
        return None;
    }
    Some(if negative {
        format!("-{significant}")
    } else {
        significant.to_string()
    })
}

/// oslo's `ParseState`: tokens are shifted onto a stack, and after each shift the top of
/// the stack is greedily reduced.
#[derive(Debug, Default)]
struct ParseState {
    stack: Vec<Token>,
}

impl ParseState {
    fn shift(&mut self, token: Token) -> Result<(), ParseError> {
        self.stack.push(token);
        while self.reduce()? {}
        Ok(())
    }

    /// Applies one reduction at the top of the stack, if one matches (the rules of oslo's
    /// `reduce`, in its order: three-token patterns first, then `not`).
    fn reduce(&mut self) -> Result<bool, ParseError> {
        let n = self.stack.len();
        if n >= 3 {
            use Token as T;
            let reducible = matches!(
                &self.stack[n - 3..],
                [
                    T::LeftParen,
                    T::Check(_) | T::AndExpr(_) | T::OrExpr(_),
                    T::RightParen
                ] | [
                    T::Check(_) | T::AndExpr(_) | T::OrExpr(_),
                    T::And | T::Or,
                    T::Check(_)
                ]
            );
            if reducible {
                let c = self.pop()?;
                let b = self.pop()?;
                let a = self.pop()?;
                let reduced = reduce3(a, b, c)?;
                self.stack.push(reduced);
                return Ok(true);
            }
        }
        if n >= 2 && matches!(&self.stack[n - 2..], [Token::Not, Token::Check(_)]) {
            let Token::Check(inner) = self.pop()? else {
                return err("internal: parser stack changed under it");
            };
            self.pop()?;
            let node = Node {
                depth: inner.depth + 1,
                check: Check::Not(Box::new(inner.check)),
            };
            self.stack.push(Token::Check(node.bounded()?));
            return Ok(true);
        }
        Ok(false)
    }

    fn pop(&mut self) -> Result<Token, ParseError> {
        self.stack
            .pop()
            .ok_or_else(|| ParseError("internal: parser stack empty".into()))
    }

    /// oslo's `result`: the stack must have reduced to one check.
    fn result(mut self) -> Result<Check, ParseError> {
        if self.stack.len() != 1 {
            return err(self.describe_failure());
        }
        match self.pop()? {
            Token::Check(node) => Ok(node.check),
            Token::AndExpr(nodes) => Ok(Node::join(nodes, Check::And)?.check),
            Token::OrExpr(nodes) => Ok(Node::join(nodes, Check::Or)?.check),
            _ => err(self.describe_failure()),
        }
    }

    fn describe_failure(&self) -> String {
        let unclosed = self
            .stack
            .iter()
            .filter(|t| matches!(t, Token::LeftParen))
            .count();
        let stray_close = self.stack.iter().any(|t| matches!(t, Token::RightParen));
        if self.stack.is_empty() {
            "no check in it".to_string()
        } else if stray_close {
            "a \")\" without its \"(\"".to_string()
        } else if unclosed > 0 {
            "a \"(\" without its \")\"".to_string()
        } else if matches!(self.stack.last(), Some(Token::And | Token::Or | Token::Not)) {
            "it ends with an operator".to_string()
        } else {
            "checks must be joined by \"and\" or \"or\"".to_string()
        }
    }
}

/// The three-token reductions (the caller matched one of their patterns).
fn reduce3(a: Token, b: Token, c: Token) -> Result<Token, ParseError> {
    Ok(match (a, b, c) {
        // `( check )`: a parenthesised expression becomes a check.
        (Token::LeftParen, Token::Check(node), Token::RightParen) => Token::Check(node),
        (Token::LeftParen, Token::AndExpr(nodes), Token::RightParen) => {
            Token::Check(Node::join(nodes, Check::And)?)
        }
        (Token::LeftParen, Token::OrExpr(nodes), Token::RightParen) => {
            Token::Check(Node::join(nodes, Check::Or)?)
        }
        (Token::Check(x), Token::And, Token::Check(y)) => Token::AndExpr(vec![x, y]),
        (Token::AndExpr(mut nodes), Token::And, Token::Check(y)) => {
            nodes.push(y);
            Token::AndExpr(nodes)
        }
        // `A or B and C`: `and` takes the last operand of the `or`.
        (Token::OrExpr(mut nodes), Token::And, Token::Check(y)) => {
            let Some(last) = nodes.pop() else {
                return err("internal: empty or-expression");
            };
            let joined = match last.check {
                Check::And(mut checks) => {
                    checks.push(y.check);
                    Node {
                        check: Check::And(checks),
                        depth: last.depth.max(y.depth + 1),
                    }
                    .bounded()?
                }
                check => Node::join(vec![Node { check, ..last }, y], Check::And)?,
            };
            nodes.push(joined);
            Token::OrExpr(nodes)
        }
        (Token::Check(x), Token::Or, Token::Check(y)) => Token::OrExpr(vec![x, y]),
        (Token::AndExpr(nodes), Token::Or, Token::Check(y)) => {
            Token::OrExpr(vec![Node::join(nodes, Check::And)?, y])
        }
        (Token::OrExpr(mut nodes), Token::Or, Token::Check(y)) => {
            nodes.push(y);
            Token::OrExpr(nodes)
        }
        _ => return err("internal: no reduction for these tokens"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// oslo.policy 6.0.1's `str(_parser.parse_rule(s))` for each string (`ERROR` where oslo
    /// logs a parse failure and falls back to `!`, and in the commented cases at the end
    /// where this module is stricter). Checked against oslo's own parser; a diff here is a
    /// divergence from oslo.
    const GOLDEN: &[(&str, &str)] = &[
        ("", "@"),
        ("@", "@"),
        ("!", "!"),
        ("role:admin", "role:admin"),
        ("  role:admin  ", "role:admin"),
        ("rule:admin_api", "rule:admin_api"),
        ("role:admin or role:service", "(role:admin or role:service)"),
        (
            "role:reader and project_id:%(project_id)s",
            "(role:reader and project_id:%(project_id)s)",
        ),
        ("a:1 or b:2 and c:3", "(a:1 or (b:2 and c:3))"),
        ("a:1 and b:2 or c:3", "((a:1 and b:2) or c:3)"),
        (
            "a:1 and b:2 or c:3 and d:4",
            "((a:1 and b:2) or (c:3 and d:4))",
        ),
        (
            "a:1 or b:2 and c:3 and d:4",
            "(a:1 or (b:2 and c:3 and d:4))",
        ),
        (
            "a:1 or (b:2 and c:3) and d:4",
            "(a:1 or (b:2 and c:3 and d:4))",
        ),
        ("a:1 and b:2 and c:3", "(a:1 and b:2 and c:3)"),
        ("(a:1 and b:2) and c:3", "((a:1 and b:2) and c:3)"),
        ("a:1 or b:2 or c:3", "(a:1 or b:2 or c:3)"),
        ("(a:1 or b:2) and c:3", "((a:1 or b:2) and c:3)"),
        ("a:1 and (b:2 or c:3)", "(a:1 and (b:2 or c:3))"),
        ("not a:1", "not a:1"),
        ("not a:1 and b:2", "(not a:1 and b:2)"),
        ("not (a:1 and b:2)", "not (a:1 and b:2)"),
        ("a:1 or not b:2 and c:3", "(a:1 or (not b:2 and c:3))"),
        ("not not a:1", "not not a:1"),
        ("NOT a:1 AND b:2 Or c:3", "((not a:1 and b:2) or c:3)"),
        ("((a:1))", "a:1"),
        ("(a:1 or b:2)", "(a:1 or b:2)"),
        ("(((a:1 or b:2)) and (c:3))", "((a:1 or b:2) and c:3)"),
        (
            "role:admin or (role:reader and project_id:%(project_id)s)",
            "(role:admin or (role:reader and project_id:%(project_id)s))",
        ),
        ("(not a:1)", "not a:1"),
        ("True:%(user.enabled)s", "True:%(user.enabled)s"),
        ("'Member':%(role.name)s", "'Member':%(role.name)s"),
        ("is_admin:True", "is_admin:True"),
        ("project_id:abc:def", "project_id:abc:def"),
        ("role:", "role:"),
        ("ROLE:admin", "ROLE:admin"),
        ("a:1\tor\nb:2", "(a:1 or b:2)"),
        ("@ and !", "(@ and !)"),
        ("(@)", "@"),
        ("role:admin role:service", "ERROR"),
        ("(role:admin", "ERROR"),
        ("role:admin)", "ERROR"),
        ("role:admin and", "ERROR"),
        ("or role:admin", "ERROR"),
        ("not", "ERROR"),
        ("()", "ERROR"),
        (" ", "ERROR"),
        ("a:1 not b:2", "ERROR"),
        ("'role:admin'", "ERROR"),
        ("admin", "ERROR"),
        // oslo asks a remote server for these: not supported.
        ("http://example.com", "ERROR"),
        ("https:foo", "ERROR"),
        // oslo accepts these and raises when enforcing (ast.literal_eval's SyntaxError or
        // Python's % formatting): refused here.
        (":foo", "ERROR"),
        ("1x:foo", "ERROR"),
        ("a(b:foo", "ERROR"),
        ("project_id:%(project_id)d", "ERROR"),
        ("project_id:%s", "ERROR"),
        ("project_id:100%", "ERROR"),
    ];

    #[test]
    fn parses_as_oslo_does() {
        for (text, want) in GOLDEN {
            let got = match parse(text) {
                Ok(c) => c.to_string(),
                Err(_) => "ERROR".to_string(),
            };
            assert_eq!(&got, want, "parsing {text:?}");
        }
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        let message = |t: &str| parse(t).err().map(|e| e.0).unwrap_or_default();
        assert_eq!(message("(role:a"), "a \"(\" without its \")\"");
        assert_eq!(message("role:a)"), "a \")\" without its \"(\"");
        assert_eq!(message("role:a and"), "it ends with an operator");
        assert_eq!(
            message("role:a role:b"),
            "checks must be joined by \"and\" or \"or\""
        );
        assert_eq!(message(" "), "no check in it");
        assert!(
            message("admin").contains("not a check"),
            "{}",
            message("admin")
        );
        assert!(message("http:x").contains("not supported"));
        assert!(message("'a:b'").contains("quoted string"));
        assert!(message("a-b:c").contains("neither a credential name nor a literal"));
        assert!(message("0x1:c").contains("decimal integer"));
        assert!(message("x:%(a)r").contains("%(name)s"));
    }

    #[test]
    fn literals_print_as_python_str_does() {
        let kind = |k: &str| parse_kind(k);
        let lit = |s: &str| Ok(Kind::Literal(s.to_string()));
        assert_eq!(kind("True"), lit("True"));
        assert_eq!(kind("None"), lit("None"));
        assert_eq!(kind("'Member'"), lit("Member"));
        assert_eq!(
            kind("\"it's\""),
            Err("\"it's\" is not a supported string literal".into())
        );
        assert_eq!(kind("42"), lit("42"));
        assert_eq!(kind("+42"), lit("42"));
        assert_eq!(kind("-0"), lit("0"));
        assert_eq!(kind("000"), lit("0"));
        assert!(kind("007").is_err(), "leading zeros are a SyntaxError");
        assert!(kind("1.5").is_err());
        assert_eq!(
            kind("target.project_id"),
            Ok(Kind::Credential(vec!["target".into(), "project_id".into()]))
        );
        assert!(kind("not").is_err());
        assert!(kind("").is_err());
    }

    #[test]
    fn list_form() {
        let list = |l: &[&[&str]]| -> Vec<Vec<String>> {
            l.iter()
                .map(|i| i.iter().map(|s| s.to_string()).collect())
                .collect()
        };
        let show = |l: &[&[&str]]| parse_list(&list(l)).map(|c| c.to_string());
        assert_eq!(show(&[]), Ok("@".into()));
        assert_eq!(show(&[&[]]), Ok("!".into()));
        assert_eq!(show(&[&["role:a"]]), Ok("role:a".into()));
        assert_eq!(
            show(&[&["role:a"], &["project_id:%(project_id)s", "role:b"]]),
            Ok("(role:a or (project_id:%(project_id)s and role:b))".into())
        );
        assert_eq!(
            show(&[&["role:a or role:b"]]),
            Ok("role:a or role:b".into())
        );
        assert!(show(&[&["admin"]]).is_err());
    }

    #[test]
    fn depth_is_bounded_without_overflowing() {
        let deep_not = "not ".repeat(100_000) + "role:a";
        assert!(parse(&deep_not).is_err());
        let deep_parens = "(role:a and ".repeat(10_000) + "role:b" + &")".repeat(10_000);
        assert!(parse(&deep_parens).is_err());
        // Many parentheses around one check add no depth.
        let wrapped = "(".repeat(10_000) + "role:a" + &")".repeat(10_000);
        assert_eq!(
            parse(&wrapped),
            Ok(Check::Role(
                Template::parse("a").unwrap_or_else(|e| panic!("{e}"))
            ))
        );
        let just_deep_enough = "not ".repeat(MAX_DEPTH as usize - 1) + "role:a";
        assert!(parse(&just_deep_enough).is_ok());
        let too_deep = "not ".repeat(MAX_DEPTH as usize) + "role:a";
        assert!(parse(&too_deep).is_err());
        // A long flat chain is wide, not deep.
        let wide = vec!["role:a"; 50_000].join(" or ");
        assert!(parse(&wide).is_ok());
    }

    struct Fake {
        roles: Vec<String>,
        service_roles: Vec<String>,
        project: Option<String>,
        target_project: Option<String>,
        rules: Vec<(String, Check)>,
    }

    impl Env for Fake {
        fn credential(&self, path: &[String]) -> Credential<'_> {
            match path {
                [k] if k == "roles" => Credential::Many(&self.roles),
                [k] if k == "service_roles" => Credential::Many(&self.service_roles),
                [k] if k == "project_id" => self
                    .project
                    .as_deref()
                    .map_or(Credential::Absent, Credential::One),
                [k] if k == "is_admin_project" => Credential::One("True"),
                _ => Credential::Absent,
            }
        }
        fn target(&self, key: &str) -> Option<&str> {
            (key == "project_id")
                .then_some(self.target_project.as_deref())
                .flatten()
        }
        fn rule(&self, name: &str) -> Option<&Check> {
            self.rules.iter().find(|(n, _)| n == name).map(|(_, c)| c)
        }
    }

    fn fake() -> Fake {
        Fake {
            roles: vec!["Reader".into(), "member".into()],
            service_roles: vec!["service".into()],
            project: Some("p1".into()),
            target_project: Some("p1".into()),
            rules: vec![],
        }
    }

    fn eval(text: &str, env: &Fake) -> bool {
        let check = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        evaluate(&check, env, 0).unwrap_or_else(|_| panic!("{text}: too deep"))
    }

    #[test]
    fn evaluates_as_oslo_does() {
        let mut env = fake();
        assert!(eval("@", &env));
        assert!(!eval("!", &env));
        assert!(eval("", &env));
        // RoleCheck is case-insensitive; a generic check on `roles` is not.
        assert!(eval("role:READER", &env));
        assert!(!eval("roles:reader", &env));
        assert!(eval("roles:Reader", &env));
        assert!(eval("service_roles:service", &env));
        assert!(!eval("service_roles:admin", &env));
        assert!(eval("project_id:%(project_id)s", &env));
        assert!(eval("project_id:p%(project_id)s or project_id:p1", &env));
        assert!(eval("is_admin_project:True", &env));
        assert!(!eval("is_admin_project:true", &env));
        assert!(eval("True:True", &env));
        assert!(eval("'p1':%(project_id)s", &env));
        assert!(eval("42:42", &env));
        assert!(!eval("not role:reader", &env));
        assert!(eval(
            "role:admin or role:reader and project_id:%(project_id)s",
            &env
        ));
        assert!(!eval(
            "(role:admin or role:reader) and project_id:other",
            &env
        ));
        // A key the target lacks makes the check false, and `not` of it true.
        assert!(!eval("project_id:%(user_id)s", &env));
        assert!(eval("not project_id:%(user_id)s", &env));
        assert!(!eval("role:%(domain_id)s", &env));
        // Absent values match nothing, not even "None".
        env.project = None;
        env.target_project = None;
        assert!(!eval("project_id:%(project_id)s", &env));
        assert!(!eval("project_id:None", &env));
        // Rules.
        env.rules = vec![("yes".into(), Check::True), ("no".into(), Check::False)];
        assert!(eval("rule:yes", &env));
        assert!(!eval("rule:no", &env));
        assert!(!eval("rule:missing", &env));
        assert!(eval("not rule:missing", &env));
    }

    #[test]
    fn rule_cycles_end_in_an_error_not_a_stack_overflow() {
        let mut env = fake();
        env.rules = vec![(
            "loop".into(),
            Check::Not(Box::new(Check::Rule("loop".into()))),
        )];
        let check = Check::Rule("loop".into());
        assert_eq!(evaluate(&check, &env, 0), Err(TooDeep));
    }
}
