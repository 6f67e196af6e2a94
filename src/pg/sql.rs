//! SQL text built from names: every identifier and literal goes through Postgres's own quoting
//! (pgrx's `quote_identifier` / `quote_qualified_identifier` / `quote_literal`), and a quoted
//! name is a type of its own, so generators cannot be handed raw user text by mistake.
use crate::error;
use pgrx::prelude::*;

/// An identifier ready for SQL text (quoted where Postgres needs it: `user_id`, `"My Col"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident(String);

impl Ident {
    /// Quote `name` as Postgres does (`quote_identifier`).
    pub fn quote(name: &str) -> Ident {
        Ident(pgrx::spi::quote_identifier(name))
    }
    /// For unit tests of pure generators, which run without Postgres: `text` must already be
    /// valid SQL for an identifier.
    #[cfg(test)]
    pub fn quoted_for_test(text: &str) -> Ident {
        Ident(text.to_string())
    }
}

impl std::fmt::Display for Ident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A schema-qualified relation name ready for SQL text (`public.notes`, `"my schema"."t"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QualifiedName(String);

impl QualifiedName {
    pub fn quote(schema: &str, name: &str) -> QualifiedName {
        QualifiedName(pgrx::spi::quote_qualified_identifier(schema, name))
    }
    #[cfg(test)]
    pub fn quoted_for_test(text: &str) -> QualifiedName {
        QualifiedName(text.to_string())
    }
    pub fn as_sql(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string literal ready for SQL text (`'it''s'`, or `E'…'` when it needs escapes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Literal(String);

impl Literal {
    pub fn quote(text: &str) -> Literal {
        Literal(pgrx::spi::quote_literal(text))
    }
    #[cfg(test)]
    pub fn quoted_for_test(text: &str) -> Literal {
        Literal(text.to_string())
    }
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Run generated statements in the caller's transaction, in order (an error aborts them all).
pub fn run_all(statements: &[String]) {
    for s in statements {
        Spi::run(s).unwrap_or_else(|e| error::spi_failed(s, e));
    }
}
