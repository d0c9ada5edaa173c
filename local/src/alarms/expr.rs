//! CloudWatch metric math, the part the template's alarms use: numbers, ids of metrics and other
//! expressions, `+ - * /`, comparisons (`> >= < <= == !=`, 1 for true, 0 for false), `AND`/`&&`,
//! `OR`/`||`, `NOT`/`!`, `FILL(x, number)` and `IF(condition, then[, else])`. Anything else is a
//! parse error, so a template alarm the runner could not evaluate fails its test, not the rehearsal.
//!
//! An expression is evaluated one period at a time: every id has a value or is missing. As in
//! CloudWatch, arithmetic on a missing value is missing, and so is a division by zero (CloudWatch
//! drops such a datapoint); `FILL` turns a missing value into its number; `IF` evaluates only the
//! branch its condition picks, and is missing when that branch is (`IF(c, x)` with `c` false).

use thiserror::Error;

/// A parsed metric-math expression (an alarm's `Expression`).
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    source: String,
    root: Node,
}

/// Why an expression was refused.
#[derive(Debug, Error, PartialEq)]
pub enum ExpressionError {
    /// A character no token starts with.
    #[error("unexpected character {found:?} at {at}")]
    Character {
        /// The character.
        found: char,
        /// Its byte offset.
        at: usize,
    },
    /// A token where another was expected.
    #[error("unexpected {found} at {at}: expected {expected}")]
    Unexpected {
        /// What was found (`end of expression` at the end).
        found: String,
        /// Its byte offset.
        at: usize,
        /// What the grammar wanted there.
        expected: &'static str,
    },
    /// A function the local evaluator does not know.
    #[error("unknown function {0}: the local evaluator knows FILL and IF")]
    UnknownFunction(String),
    /// A function called with the wrong number of arguments.
    #[error("{function} takes {expected} arguments, not {got}")]
    Arity {
        /// `FILL` or `IF`.
        function: &'static str,
        /// The accepted counts.
        expected: &'static str,
        /// The count given.
        got: usize,
    },
    /// `FILL`'s second argument is not a number (`REPEAT`, `LINEAR`, a metric).
    #[error(
        "FILL's second argument must be a number (REPEAT, LINEAR and series are not supported)"
    )]
    FillValue,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Number(f64),
    Id(String),
    Neg(Box<Node>),
    Not(Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    Fill(Box<Node>, f64),
    If(Box<Node>, Box<Node>, Option<Box<Node>>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
    And,
    Or,
}

impl Expression {
    /// Parses `source`.
    pub fn parse(source: &str) -> Result<Self, ExpressionError> {
        let mut parser = Parser {
            tokens: tokenize(source)?,
            next: 0,
            end: source.len(),
        };
        let root = parser.or()?;
        match parser.tokens.get(parser.next) {
            None => Ok(Expression {
                source: source.to_owned(),
                root,
            }),
            Some((at, token)) => Err(ExpressionError::Unexpected {
                found: token.describe(),
                at: *at,
                expected: "an operator or the end",
            }),
        }
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The ids it names (metrics or other expressions), in order, with repeats.
    pub fn ids(&self) -> Vec<&str> {
        let mut ids = Vec::new();
        self.root.ids(&mut ids);
        ids
    }

    /// Its value for one period, given each id's value there (`None`: missing).
    pub fn evaluate(&self, value_of: &mut dyn FnMut(&str) -> Option<f64>) -> Option<f64> {
        self.root.evaluate(value_of)
    }
}

impl Node {
    fn ids<'a>(&'a self, ids: &mut Vec<&'a str>) {
        match self {
            Node::Number(_) => {}
            Node::Id(id) => ids.push(id),
            Node::Neg(x) | Node::Not(x) | Node::Fill(x, _) => x.ids(ids),
            Node::Binary(_, a, b) => {
                a.ids(ids);
                b.ids(ids);
            }
            Node::If(c, a, b) => {
                c.ids(ids);
                a.ids(ids);
                if let Some(b) = b {
                    b.ids(ids);
                }
            }
        }
    }

    fn evaluate(&self, value_of: &mut dyn FnMut(&str) -> Option<f64>) -> Option<f64> {
        match self {
            Node::Number(n) => Some(*n),
            Node::Id(id) => value_of(id),
            Node::Neg(x) => x.evaluate(value_of).map(|v| -v),
            Node::Not(x) => x.evaluate(value_of).map(|v| truth(v == 0.0)),
            Node::Binary(op, a, b) => {
                let (a, b) = (a.evaluate(value_of)?, b.evaluate(value_of)?);
                match op {
                    BinOp::Add => Some(a + b),
                    BinOp::Sub => Some(a - b),
                    BinOp::Mul => Some(a * b),
                    BinOp::Div if b == 0.0 => None,
                    BinOp::Div => Some(a / b),
                    BinOp::Gt => Some(truth(a > b)),
                    BinOp::Ge => Some(truth(a >= b)),
                    BinOp::Lt => Some(truth(a < b)),
                    BinOp::Le => Some(truth(a <= b)),
                    BinOp::Eq => Some(truth(a == b)),
                    BinOp::Ne => Some(truth(a != b)),
                    BinOp::And => Some(truth(a != 0.0 && b != 0.0)),
                    BinOp::Or => Some(truth(a != 0.0 || b != 0.0)),
                }
            }
            Node::Fill(x, value) => Some(x.evaluate(value_of).unwrap_or(*value)),
            Node::If(condition, then, otherwise) => {
                if condition.evaluate(value_of)? != 0.0 {
                    then.evaluate(value_of)
                } else {
                    otherwise.as_ref()?.evaluate(value_of)
                }
            }
        }
    }
}

fn truth(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Word(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Number(n) => format!("number {n}"),
            Token::Word(w) => format!("{w:?}"),
            Token::Op(op) => format!("{op:?}"),
            Token::Open => "\"(\"".into(),
            Token::Close => "\")\"".into(),
            Token::Comma => "\",\"".into(),
        }
    }
}

const OPERATORS: [&str; 14] = [
    ">=", "<=", "==", "!=", "&&", "||", ">", "<", "+", "-", "*", "/", "!", "=",
];

fn tokenize(source: &str) -> Result<Vec<(usize, Token)>, ExpressionError> {
    let mut tokens = Vec::new();
    let mut rest = source.char_indices().peekable();
    while let Some(&(at, c)) = rest.peek() {
        let tail = &source[at..];
        if c.is_whitespace() {
            rest.next();
            continue;
        }
        let (token, len) = if c.is_ascii_digit() || c == '.' {
            let len = tail
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(tail.len());
            let number = tail[..len]
                .parse()
                .map_err(|_| ExpressionError::Character { found: c, at })?;
            (Token::Number(number), len)
        } else if c.is_ascii_alphabetic() || c == '_' {
            let len = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            (Token::Word(tail[..len].to_owned()), len)
        } else if let Some(op) = OPERATORS.iter().find(|op| tail.starts_with(**op)) {
            // A lone "=" is no operator of metric math.
            if *op == "=" {
                return Err(ExpressionError::Character { found: c, at });
            }
            (Token::Op(op), op.len())
        } else {
            match c {
                '(' => (Token::Open, 1),
                ')' => (Token::Close, 1),
                ',' => (Token::Comma, 1),
                _ => return Err(ExpressionError::Character { found: c, at }),
            }
        };
        tokens.push((at, token));
        while rest.peek().is_some_and(|&(i, _)| i < at + len) {
            rest.next();
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    next: usize,
    end: usize,
}

type Parsed = Result<Node, ExpressionError>;

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(_, t)| t)
    }

    fn unexpected(&self, expected: &'static str) -> ExpressionError {
        match self.tokens.get(self.next) {
            Some((at, token)) => ExpressionError::Unexpected {
                found: token.describe(),
                at: *at,
                expected,
            },
            None => ExpressionError::Unexpected {
                found: "end of expression".into(),
                at: self.end,
                expected,
            },
        }
    }

    /// The next token, if it is one of `ops` (operators or keywords), as its operator.
    fn operator(&mut self, ops: &[(&str, BinOp)]) -> Option<BinOp> {
        let found = match self.peek()? {
            Token::Op(op) => *op,
            Token::Word(word) => word.as_str(),
            _ => return None,
        };
        let (_, op) = ops.iter().find(|(name, _)| *name == found)?;
        self.next += 1;
        Some(*op)
    }

    fn binary(&mut self, ops: &[(&str, BinOp)], operand: fn(&mut Self) -> Parsed) -> Parsed {
        let mut left = operand(self)?;
        while let Some(op) = self.operator(ops) {
            left = Node::Binary(op, Box::new(left), Box::new(operand(self)?));
        }
        Ok(left)
    }

    fn or(&mut self) -> Parsed {
        self.binary(&[("||", BinOp::Or), ("OR", BinOp::Or)], Self::and)
    }

    fn and(&mut self) -> Parsed {
        self.binary(&[("&&", BinOp::And), ("AND", BinOp::And)], Self::comparison)
    }

    fn comparison(&mut self) -> Parsed {
        let ops = [
            (">=", BinOp::Ge),
            ("<=", BinOp::Le),
            ("==", BinOp::Eq),
            ("!=", BinOp::Ne),
            (">", BinOp::Gt),
            ("<", BinOp::Lt),
        ];
        self.binary(&ops, Self::additive)
    }

    fn additive(&mut self) -> Parsed {
        self.binary(
            &[("+", BinOp::Add), ("-", BinOp::Sub)],
            Self::multiplicative,
        )
    }

    fn multiplicative(&mut self) -> Parsed {
        self.binary(&[("*", BinOp::Mul), ("/", BinOp::Div)], Self::unary)
    }

    fn unary(&mut self) -> Parsed {
        match self.peek() {
            Some(Token::Op("-")) => {
                self.next += 1;
                Ok(Node::Neg(Box::new(self.unary()?)))
            }
            Some(Token::Op("!")) => {
                self.next += 1;
                Ok(Node::Not(Box::new(self.unary()?)))
            }
            Some(Token::Word(w)) if w == "NOT" => {
                self.next += 1;
                Ok(Node::Not(Box::new(self.unary()?)))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Parsed {
        let token = self.peek().cloned();
        match token {
            Some(Token::Number(n)) => {
                self.next += 1;
                Ok(Node::Number(n))
            }
            Some(Token::Open) => {
                self.next += 1;
                let inner = self.or()?;
                self.expect_close()?;
                Ok(inner)
            }
            Some(Token::Word(word)) => {
                self.next += 1;
                if self.peek() == Some(&Token::Open) {
                    self.next += 1;
                    self.call(&word)
                } else {
                    Ok(Node::Id(word))
                }
            }
            _ => Err(self.unexpected("a number, an id, a function or \"(\"")),
        }
    }

    fn expect_close(&mut self) -> Result<(), ExpressionError> {
        if self.peek() == Some(&Token::Close) {
            self.next += 1;
            Ok(())
        } else {
            Err(self.unexpected("\")\""))
        }
    }

    /// A function's arguments (after its "("), then the function itself.
    fn call(&mut self, name: &str) -> Parsed {
        let mut args = vec![self.or()?];
        while self.peek() == Some(&Token::Comma) {
            self.next += 1;
            args.push(self.or()?);
        }
        self.expect_close()?;
        let got = args.len();
        let mut args = args.into_iter();
        match (name, got) {
            ("FILL", 2) => {
                let series = args.next().expect("two arguments");
                let value = match args.next().expect("two arguments") {
                    Node::Number(n) => n,
                    Node::Neg(inner) => match *inner {
                        Node::Number(n) => -n,
                        _ => return Err(ExpressionError::FillValue),
                    },
                    _ => return Err(ExpressionError::FillValue),
                };
                Ok(Node::Fill(Box::new(series), value))
            }
            ("FILL", _) => Err(ExpressionError::Arity {
                function: "FILL",
                expected: "2",
                got,
            }),
            ("IF", 2 | 3) => {
                let mut next = || Box::new(args.next().expect("counted"));
                Ok(Node::If(next(), next(), args.next().map(Box::new)))
            }
            ("IF", _) => Err(ExpressionError::Arity {
                function: "IF",
                expected: "2 or 3",
                got,
            }),
            _ => Err(ExpressionError::UnknownFunction(name.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(source: &str, ids: &[(&str, f64)]) -> Option<f64> {
        let expression = Expression::parse(source).expect("parses");
        expression.evaluate(&mut |id| ids.iter().find(|(k, _)| *k == id).map(|(_, v)| *v))
    }

    #[test]
    fn arithmetic_follows_the_usual_precedence() {
        assert_eq!(value("1 + 2 * 3 - 4 / 2", &[]), Some(5.0));
        assert_eq!(value("(1 + 2) * -3", &[]), Some(-9.0));
    }

    #[test]
    fn comparisons_and_logic_are_one_or_zero() {
        assert_eq!(
            value("a >= 2 AND b < 1", &[("a", 2.0), ("b", 0.0)]),
            Some(1.0)
        );
        assert_eq!(
            value("a > 2 || NOT b", &[("a", 2.0), ("b", 0.0)]),
            Some(1.0)
        );
        assert_eq!(
            value("a == 1 && !(b != 0)", &[("a", 2.0), ("b", 0.0)]),
            Some(0.0)
        );
    }

    #[test]
    fn arithmetic_on_a_missing_value_is_missing_and_fill_replaces_it() {
        assert_eq!(value("a + b", &[("a", 1.0)]), None);
        assert_eq!(value("a + FILL(b, 0)", &[("a", 1.0)]), Some(1.0));
        assert_eq!(value("FILL(b, -1)", &[]), Some(-1.0));
    }

    #[test]
    fn a_division_by_zero_is_missing() {
        assert_eq!(value("a / b", &[("a", 1.0), ("b", 0.0)]), None);
    }

    #[test]
    fn if_evaluates_only_the_branch_it_picks() {
        let rate = "IF(total > 0, 100 * part / total, 0)";
        assert_eq!(value(rate, &[("part", 0.0), ("total", 0.0)]), Some(0.0));
        assert_eq!(value(rate, &[("part", 1.0), ("total", 4.0)]), Some(25.0));
        assert_eq!(value("IF(c, 1)", &[("c", 0.0)]), None);
    }

    #[test]
    fn ids_lists_every_name_the_expression_reads() {
        let expression = Expression::parse("IF(t >= 20, 100 * FILL(b, 0) / t, 0)").unwrap();
        assert_eq!(expression.ids(), ["t", "b", "t"]);
    }

    #[test]
    fn unknown_functions_and_syntax_errors_are_refused() {
        let parse = Expression::parse;
        assert_eq!(
            parse("RATE(m1)"),
            Err(ExpressionError::UnknownFunction("RATE".into()))
        );
        assert_eq!(parse("FILL(m1, REPEAT)"), Err(ExpressionError::FillValue));
        assert!(matches!(
            parse("FILL(m1)"),
            Err(ExpressionError::Arity { got: 1, .. })
        ));
        assert!(matches!(
            parse("a +"),
            Err(ExpressionError::Unexpected { at: 3, .. })
        ));
        assert!(matches!(
            parse("a = b"),
            Err(ExpressionError::Character { found: '=', at: 2 })
        ));
        assert!(matches!(
            parse("(a"),
            Err(ExpressionError::Unexpected { .. })
        ));
    }
}
