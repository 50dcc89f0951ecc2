//! oslo.policy check strings: tokenized and parsed like `oslo_policy._parser`, once, into an
//! expression tree that is evaluated per request without allocating (the one exception is a
//! match that mixes text with target keys, which no Keystone default does).

use std::borrow::Cow;
use std::fmt;

use super::{CredKey, Credentials, Target};

/// Token scopes a rule accepts (oslo's `scope_types`). [`Scopes::ANY`] (none registered)
/// accepts every token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    pub const ANY: Scopes = Scopes(0);
    pub const SYSTEM: Scopes = Scopes(1);
    pub const DOMAIN: Scopes = Scopes(2);
    pub const PROJECT: Scopes = Scopes(4);

    pub const fn union(self, other: Scopes) -> Scopes {
        Scopes(self.0 | other.0)
    }

    /// Whether a token of `scope` (one of SYSTEM, DOMAIN, PROJECT) may use the rule.
    pub fn admits(self, scope: Scopes) -> bool {
        self.0 == 0 || self.0 & scope.0 != 0
    }
}

/// One named rule: its check string as written, parsed, and the scopes Keystone registered it
/// with (kept when a policy file overrides the check string, as oslo does).
#[derive(Debug)]
pub(super) struct Rule {
    pub name: Box<str>,
    pub check: Box<str>,
    pub scopes: Scopes,
    pub expr: Expr,
}

/// A parsed check string.
#[derive(Debug)]
pub(super) enum Expr {
    /// `@` or the empty string.
    True,
    /// `!`.
    False,
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// `rule:<name>`; `index` is filled in when the whole policy is linked (`None`: no such
    /// rule and no `default` rule, so false).
    Rule {
        name: Box<str>,
        index: Option<usize>,
    },
    /// `role:<match>`: the interpolated match against the role names, case-insensitively.
    Role {
        source: Box<str>,
        role: Template,
    },
    /// `<kind>:<match>`: a literal or a credential value against the interpolated match.
    Generic {
        source: Box<str>,
        left: Left,
        right: Template,
    },
    /// A check kind Baton does not implement (`http:`, `https:`): always false.
    Unsupported(Box<str>),
}

/// The left side of a generic check: a Python literal (`'manager'`, `True`, `None`, `1`) or a
/// dotted credential key.
#[derive(Debug)]
pub(super) enum Left {
    Literal(Box<str>),
    Cred(CredKey),
}

/// The right side of a check: text with `%(key)s` references to the target, rendered as
/// Python's `match % target` does. A missing key makes the check false.
#[derive(Debug)]
pub(super) struct Template(Vec<Piece>);

#[derive(Debug)]
enum Piece {
    Text(Box<str>),
    Key(Box<str>),
}

impl Template {
    fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('%') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('%') {
                literal.push('%');
                rest = tail;
            } else if let Some(inner) = after.strip_prefix('(') {
                let close = inner
                    .find(')')
                    .ok_or_else(|| format!("unterminated %( in {text:?}"))?;
                let key = &inner[..close];
                let Some(tail) = inner[close + 1..].strip_prefix('s') else {
                    return Err(format!(
                        "only %(key)s substitutions are supported, in {text:?}"
                    ));
                };
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal).into()));
                }
                pieces.push(Piece::Key(key.into()));
                rest = tail;
            } else {
                return Err(format!("stray '%' in {text:?} (write %% for a literal %)"));
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() || pieces.is_empty() {
            pieces.push(Piece::Text(literal.into()));
        }
        Ok(Template(pieces))
    }

    fn render<'t>(&'t self, target: &'t Target) -> Option<Cow<'t, str>> {
        match self.0.as_slice() {
            [Piece::Text(text)] => Some(Cow::Borrowed(text)),
            [Piece::Key(key)] => target.get(key).map(Cow::Borrowed),
            pieces => {
                let mut out = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(text) => out.push_str(text),
                        Piece::Key(key) => out.push_str(target.get(key)?),
                    }
                }
                Some(Cow::Owned(out))
            }
        }
    }
}

impl Expr {
    pub(super) fn eval(&self, rules: &[Rule], creds: &Credentials, target: &Target) -> bool {
        match self {
            Expr::True => true,
            Expr::False | Expr::Unsupported(_) => false,
            Expr::Not(inner) => !inner.eval(rules, creds, target),
            Expr::And(items) => items.iter().all(|e| e.eval(rules, creds, target)),
            Expr::Or(items) => items.iter().any(|e| e.eval(rules, creds, target)),
            Expr::Rule { index, .. } => {
                index.is_some_and(|i| rules[i].expr.eval(rules, creds, target))
            }
            Expr::Role { role, .. } => role
                .render(target)
                .is_some_and(|wanted| creds.roles.iter().any(|r| same_role(r, &wanted))),
            Expr::Generic { left, right, .. } => {
                let Some(wanted) = right.render(target) else {
                    return false;
                };
                match left {
                    Left::Literal(literal) => **literal == *wanted,
                    Left::Cred(key) => creds.value(*key).matches(&wanted),
                }
            }
        }
    }

    /// Every `rule:` reference, for linking.
    pub(super) fn rule_refs_mut(&mut self, visit: &mut impl FnMut(&str, &mut Option<usize>)) {
        match self {
            Expr::Not(inner) => inner.rule_refs_mut(visit),
            Expr::And(items) | Expr::Or(items) => {
                items.iter_mut().for_each(|e| e.rule_refs_mut(visit));
            }
            Expr::Rule { name, index } => visit(name, index),
            _ => {}
        }
    }

    /// The resolved `rule:` references, for cycle detection.
    pub(super) fn rule_indices(&self, out: &mut Vec<usize>) {
        match self {
            Expr::Not(inner) => inner.rule_indices(out),
            Expr::And(items) | Expr::Or(items) => items.iter().for_each(|e| e.rule_indices(out)),
            Expr::Rule { index: Some(i), .. } => out.push(*i),
            _ => {}
        }
    }

    /// The checks Baton evaluates as false because it does not implement their kind.
    pub(super) fn unsupported(&self, out: &mut Vec<String>) {
        match self {
            Expr::Not(inner) => inner.unsupported(out),
            Expr::And(items) | Expr::Or(items) => items.iter().for_each(|e| e.unsupported(out)),
            Expr::Unsupported(source) => out.push(source.to_string()),
            _ => {}
        }
    }
}

/// oslo lower-cases both sides (`match.lower() in [x.lower() for x in roles]`).
fn same_role(held: &str, wanted: &str) -> bool {
    held.chars()
        .flat_map(char::to_lowercase)
        .eq(wanted.chars().flat_map(char::to_lowercase))
}

/// Fully parenthesised, so tests can see how a string was grouped.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, items: &[Expr], op: &str| {
            f.write_str("(")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(")")
        };
        match self {
            Expr::True => f.write_str("@"),
            Expr::False => f.write_str("!"),
            Expr::Not(inner) => write!(f, "(not {inner})"),
            Expr::And(items) => join(f, items, "and"),
            Expr::Or(items) => join(f, items, "or"),
            Expr::Rule { name, .. } => write!(f, "rule:{name}"),
            Expr::Role { source, .. }
            | Expr::Generic { source, .. }
            | Expr::Unsupported(source) => f.write_str(source),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token<'a> {
    Open,
    Close,
    And,
    Or,
    Not,
    Check(&'a str),
    Quoted(&'a str),
}

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Open => f.write_str("'('"),
            Token::Close => f.write_str("')'"),
            Token::And => f.write_str("'and'"),
            Token::Or => f.write_str("'or'"),
            Token::Not => f.write_str("'not'"),
            Token::Check(c) => write!(f, "{c:?}"),
            Token::Quoted(q) => write!(f, "quoted string {q:?}"),
        }
    }
}

/// oslo's `_parse_tokenize`: words split on whitespace, leading `(` and trailing `)` peeled
/// off each word, `and`/`or`/`not` case-insensitive, a fully quoted word is a string.
fn tokenize(rule: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    for word in rule.split_whitespace() {
        let clean = word.trim_start_matches('(');
        tokens.extend(std::iter::repeat_n(Token::Open, word.len() - clean.len()));
        let core = clean.trim_end_matches(')');
        if !core.is_empty() {
            let quoted = clean.len() >= 2
                && ((clean.starts_with('"') && clean.ends_with('"'))
                    || (clean.starts_with('\'') && clean.ends_with('\'')));
            tokens.push(if core.eq_ignore_ascii_case("and") {
                Token::And
            } else if core.eq_ignore_ascii_case("or") {
                Token::Or
            } else if core.eq_ignore_ascii_case("not") {
                Token::Not
            } else if quoted {
                Token::Quoted(&clean[1..clean.len() - 1])
            } else {
                Token::Check(core)
            });
        }
        tokens.extend(std::iter::repeat_n(Token::Close, clean.len() - core.len()));
    }
    tokens
}

/// Parses a check string. The empty string allows everyone (as in oslo); anything oslo would
/// fail to parse (and so silently deny) is an error here, so a typo is seen at start-up.
pub(super) fn parse(rule: &str) -> Result<Expr, String> {
    if rule.is_empty() {
        return Ok(Expr::True);
    }
    let tokens = tokenize(rule);
    if tokens.is_empty() {
        return Err("blank check string (write \"\" to allow everyone)".to_owned());
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let expr = parser.or_expr()?;
    match parser.peek() {
        None => Ok(expr),
        Some(Token::Close) => Err("unbalanced parenthesis".to_owned()),
        Some(other) => Err(format!("expected 'and' or 'or' before {other}")),
    }
}

/// Deepest nesting of parentheses and `not`s accepted. oslo's parser is not recursive and takes
/// any depth; this one is, so a deeper check string is refused rather than left to overflow the
/// stack (real rules nest a few levels).
pub(super) const MAX_NESTING: usize = 100;

struct Parser<'a> {
    tokens: Vec<Token<'a>>,
    at: usize,
    /// Parentheses and `not`s open at this point.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.at).copied()
    }

    fn next(&mut self) -> Option<Token<'a>> {
        let token = self.peek();
        self.at += 1;
        token
    }

    // Precedence as oslo's reductions give it: `not` binds tightest, then `and`, then `or`.
    fn or_expr(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.and_expr()?];
        while self.peek() == Some(Token::Or) {
            self.at += 1;
            items.push(self.and_expr()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::Or(items)
        })
    }

    fn and_expr(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.not_expr()?];
        while self.peek() == Some(Token::And) {
            self.at += 1;
            items.push(self.not_expr()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::And(items)
        })
    }

    fn not_expr(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(Token::Not) {
            self.at += 1;
            self.enter()?;
            let inner = self.not_expr()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.atom()
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!("nested deeper than {MAX_NESTING} levels"));
        }
        Ok(())
    }

    fn atom(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Open) => {
                if self.peek() == Some(Token::Close) {
                    return Err("empty parentheses".to_owned());
                }
                self.enter()?;
                let inner = self.or_expr()?;
                self.depth -= 1;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    None => Err("unbalanced parenthesis".to_owned()),
                    Some(other) => Err(format!("expected 'and', 'or' or ')' before {other}")),
                }
            }
            Some(Token::Check(check)) => parse_check(check),
            Some(Token::Close) => Err("unbalanced parenthesis".to_owned()),
            Some(Token::Quoted(text)) => Err(format!(
                "unexpected quoted string {text:?} (a quoted literal goes before the ':' of a check)"
            )),
            Some(op) => Err(format!("expected a check before {op}")),
            None => Err("expected a check at the end".to_owned()),
        }
    }
}

/// oslo's `_parse_check`: `@`, `!`, or `kind:match` where the kind selects the check.
fn parse_check(check: &str) -> Result<Expr, String> {
    match check {
        "@" => return Ok(Expr::True),
        "!" => return Ok(Expr::False),
        _ => {}
    }
    let Some((kind, matched)) = check.split_once(':') else {
        return Err(format!("check {check:?} is not of the form kind:match"));
    };
    let source: Box<str> = check.into();
    let bad = |reason: String| format!("check {check:?}: {reason}");
    match kind {
        "" => Err(bad("empty kind".to_owned())),
        "rule" => Ok(Expr::Rule {
            name: matched.into(),
            index: None,
        }),
        "role" => Ok(Expr::Role {
            source,
            role: Template::parse(matched).map_err(bad)?,
        }),
        // oslo POSTs the target and credentials to a URL for these; Baton never does.
        "http" | "https" => Ok(Expr::Unsupported(source)),
        _ => Ok(Expr::Generic {
            source,
            left: parse_left(kind),
            right: Template::parse(matched).map_err(bad)?,
        }),
    }
}

/// oslo tries `ast.literal_eval(kind)` and compares `str()` of the result; failing that the
/// kind is a dotted path into the credentials.
fn parse_left(kind: &str) -> Left {
    let quoted = kind.len() >= 2
        && ((kind.starts_with('\'') && kind.ends_with('\''))
            || (kind.starts_with('"') && kind.ends_with('"')));
    if quoted {
        return Left::Literal(kind[1..kind.len() - 1].into());
    }
    if matches!(kind, "True" | "False" | "None") {
        return Left::Literal(kind.into());
    }
    let digits = kind.strip_prefix(['+', '-']).unwrap_or(kind);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = kind.parse::<i128>() {
            return Left::Literal(n.to_string().into());
        }
    }
    Left::Cred(CredKey::parse(kind))
}
