//! The RLS audit of docs/sql-reference.md. The lints are catalog queries, so they live in hand-written
//! SQL (sql/audit.sql); this module only pulls that file into the extension script.
use pgrx::prelude::*;

extension_sql_file!("../sql/audit.sql", name = "audit", requires = ["bootstrap", "registry"]);
