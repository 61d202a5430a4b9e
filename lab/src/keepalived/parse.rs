//! The generic tree of keepalived.conf: statements with values and optional
//! blocks, before any meaning is given to a keyword.
//!
//! A statement is a keyword and the values after it on the same line. Its block
//! opens with `{` on the same line or on a following line, as keepalived
//! accepts both. Nesting is bounded by [`MAX_DEPTH`] so hostile input cannot
//! exhaust the stack.

use super::ParseError;
use super::lexer::{Token, TokenKind};

/// Deepest block nesting accepted. Real configurations use four levels
/// (`virtual_server` → `real_server` → `HTTP_GET` → `url`); 32 leaves room
/// and keeps recursion shallow.
pub(crate) const MAX_DEPTH: usize = 32;

/// A word with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    pub(crate) text: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// One statement: `keyword value... [{ children }]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) keyword: Word,
    pub(crate) args: Vec<Word>,
    /// `Some` when a block followed, even an empty one.
    pub(crate) block: Option<Vec<Node>>,
}

impl Node {
    pub(crate) fn line(&self) -> usize {
        self.keyword.line
    }

    pub(crate) fn name(&self) -> &str {
        &self.keyword.text
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn skip_newlines(&mut self) {
        while self.peek().is_some_and(|t| t.kind == TokenKind::Newline) {
            self.pos += 1;
        }
    }

    /// Parses statements until the matching `}` (when `opened` names the `{`
    /// that opened this block) or the end of input (at the top level).
    fn block(
        &mut self,
        depth: usize,
        opened: Option<(usize, usize)>,
    ) -> Result<Vec<Node>, ParseError> {
        let mut nodes = Vec::new();
        loop {
            self.skip_newlines();
            let Some(token) = self.peek().cloned() else {
                return match opened {
                    None => Ok(nodes),
                    Some((line, column)) => Err(ParseError {
                        line,
                        column,
                        message: "unclosed '{' (no matching '}' before the end of the file)"
                            .to_string(),
                    }),
                };
            };
            match token.kind {
                TokenKind::Newline => {}
                TokenKind::Close => {
                    self.pos += 1;
                    if opened.is_some() {
                        return Ok(nodes);
                    }
                    return Err(ParseError {
                        line: token.line,
                        column: token.column,
                        message: "unbalanced '}'".to_string(),
                    });
                }
                TokenKind::Open => {
                    return Err(ParseError {
                        line: token.line,
                        column: token.column,
                        message: "'{' without a keyword before it".to_string(),
                    });
                }
                TokenKind::Word(text) => {
                    self.pos += 1;
                    let keyword = Word {
                        text,
                        line: token.line,
                        column: token.column,
                    };
                    nodes.push(self.statement(keyword, depth)?);
                }
            }
        }
    }

    /// Parses the values and optional block after `keyword`.
    fn statement(&mut self, keyword: Word, depth: usize) -> Result<Node, ParseError> {
        let mut args = Vec::new();
        while let Some(Token {
            kind: TokenKind::Word(text),
            line,
            column,
        }) = self.peek().cloned()
        {
            self.pos += 1;
            args.push(Word { text, line, column });
        }
        // A block may open on this line or on a later one.
        let mut look = self.pos;
        while self
            .tokens
            .get(look)
            .is_some_and(|t| t.kind == TokenKind::Newline)
        {
            look += 1;
        }
        let block = match self.tokens.get(look) {
            Some(open) if open.kind == TokenKind::Open => {
                let at = (open.line, open.column);
                if depth + 1 > MAX_DEPTH {
                    return Err(ParseError {
                        line: open.line,
                        column: open.column,
                        message: format!("blocks nested deeper than {MAX_DEPTH} levels"),
                    });
                }
                self.pos = look + 1;
                Some(self.block(depth + 1, Some(at))?)
            }
            _ => None,
        };
        Ok(Node {
            keyword,
            args,
            block,
        })
    }
}

/// Parses tokens into the statement tree.
pub(crate) fn parse_tree(tokens: Vec<Token>) -> Result<Vec<Node>, ParseError> {
    Parser { tokens, pos: 0 }.block(0, None)
}
