//! Tokens of keepalived.conf: words, `{`, `}` and line ends.
//!
//! keepalived's own reader is line based: a keyword and its values sit on one
//! line, `{` and `}` stand alone even when glued to a word, and `#` or `!`
//! start a comment anywhere outside quotes (keepalived.conf(5), DESCRIPTION).
//! So the lexer keeps line ends as tokens and lets the parser decide where a
//! statement stops.

use super::ParseError;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A keyword or a value, quotes removed and escapes resolved.
    Word(String),
    /// `{`
    Open,
    /// `}`
    Close,
    /// The end of a line: ends the current statement.
    Newline,
}

/// A token with the 1-based position of its first character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// A cursor over the characters of the input that tracks line and column.
struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    column: usize,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }
}

/// Characters that end an unquoted word.
fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '{' | '}' | '#' | '!')
}

/// Splits `src` into tokens.
///
/// Quoting follows keepalived.conf(5) "Quoted strings": `"` or `'` quote up to
/// the same character, quotes may sit inside a word (`ab"c d"e` is one word,
/// `abc de`), and a backslash escapes the next character inside quotes. A quote
/// never spans lines, because keepalived reads one line at a time.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut cur = Cursor {
        chars: src.chars().peekable(),
        line: 1,
        column: 1,
    };
    let mut tokens = Vec::new();
    while let Some(c) = cur.peek() {
        let (line, column) = (cur.line, cur.column);
        match c {
            '\n' => {
                cur.bump();
                tokens.push(Token {
                    kind: TokenKind::Newline,
                    line,
                    column,
                });
            }
            '#' | '!' => {
                while cur.peek().is_some_and(|c| c != '\n') {
                    cur.bump();
                }
            }
            '{' | '}' => {
                cur.bump();
                let kind = if c == '{' {
                    TokenKind::Open
                } else {
                    TokenKind::Close
                };
                tokens.push(Token { kind, line, column });
            }
            c if c.is_whitespace() => {
                cur.bump();
            }
            _ => {
                let word = lex_word(&mut cur)?;
                tokens.push(Token {
                    kind: TokenKind::Word(word),
                    line,
                    column,
                });
            }
        }
    }
    Ok(tokens)
}

/// Reads one word starting at the cursor, which is on a non-delimiter.
fn lex_word(cur: &mut Cursor<'_>) -> Result<String, ParseError> {
    let mut word = String::new();
    while let Some(c) = cur.peek() {
        if is_delimiter(c) {
            break;
        }
        if c == '"' || c == '\'' {
            let (line, column) = (cur.line, cur.column);
            cur.bump();
            lex_quoted(cur, c, &mut word).ok_or_else(|| ParseError {
                line,
                column,
                message: format!("unterminated quoted string (opened with {c})"),
            })?;
        } else {
            cur.bump();
            word.push(c);
        }
    }
    Ok(word)
}

/// Appends the quoted part to `word`, consuming the closing quote; `None` when
/// the line or input ends first.
fn lex_quoted(cur: &mut Cursor<'_>, quote: char, word: &mut String) -> Option<()> {
    loop {
        match cur.peek()? {
            '\n' => return None,
            c if c == quote => {
                cur.bump();
                return Some(());
            }
            '\\' => {
                cur.bump();
                let escaped = match cur.peek()? {
                    '\n' => return None,
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    other => other,
                };
                cur.bump();
                word.push(escaped);
            }
            c => {
                cur.bump();
                word.push(c);
            }
        }
    }
}
