//! Every error the extension raises goes through here, so each one carries a SQLSTATE
//! documented in docs/sql-reference.md and a message a DBA can act on (and never a token or key).
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
pub use pgrx::PgSqlErrorCode as Code;

/// Raise an ERROR with `code` and `message`. Never returns.
pub fn raise(code: Code, message: impl Into<String>) -> ! {
    ErrorReport::new(code, message.into(), "health_rls").report(PgLogLevel::ERROR);
    unreachable!("ERROR returned")
}

/// 22023 invalid_parameter_value: the caller passed a bad argument.
pub fn bad_argument(message: impl Into<String>) -> ! {
    raise(Code::ERRCODE_INVALID_PARAMETER_VALUE, message)
}

/// 28000 invalid_authorization_specification: a token or credential was refused.
pub fn not_authorized(message: impl Into<String>) -> ! {
    raise(Code::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, message)
}

/// XX000 internal_error: a statement of our own failed (it names what was being done).
pub fn spi_failed(what: &str, e: pgrx::spi::Error) -> ! {
    raise(Code::ERRCODE_INTERNAL_ERROR, format!("{what}: {e}"))
}

/// For `#[pg_test]`s: what a statement does, seen as a client sees it.
#[cfg(any(test, feature = "pg_test"))]
pub mod testing {
    use pgrx::prelude::*;

    /// Run `sql` in a subtransaction (a PL/pgSQL EXCEPTION block): "ok", or "SQLSTATE: message"
    /// of the error it raised, which is rolled back.
    pub fn outcome(sql: &str) -> String {
        Spi::run(
            "CREATE OR REPLACE FUNCTION pg_temp.outcome(q text) RETURNS text LANGUAGE plpgsql AS $$ \
             BEGIN EXECUTE q; RETURN 'ok'; \
             EXCEPTION WHEN others THEN RETURN sqlstate || ': ' || sqlerrm; END $$",
        )
        .expect("create pg_temp.outcome");
        Spi::get_one_with_args::<String>("SELECT pg_temp.outcome($1)", &[sql.into()])
            .expect("pg_temp.outcome runs")
            .expect("never NULL")
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// Test-only: a Rust panic inside a SQL-callable function.
    #[pg_extern]
    fn health_rls_test_panic() -> i32 {
        panic!("deliberate panic for the test")
    }

    /// pgrx fails this test unless the statement raises an ERROR with exactly this message.
    #[pg_test(error = "deliberate panic for the test")]
    fn a_panic_becomes_an_error() {
        Spi::get_one::<i32>("SELECT tests.health_rls_test_panic()").ok();
    }

    /// The panic is caught in a real subtransaction (as a PL/pgSQL EXCEPTION block or a client's
    /// SAVEPOINT would), rolled back, and the same backend goes on answering queries.
    #[pg_test]
    fn a_panic_is_rolled_back_with_its_subtransaction_and_the_backend_lives_on() {
        let caught = super::testing::outcome("SELECT tests.health_rls_test_panic()");
        assert_eq!(caught, "XX000: deliberate panic for the test");
        assert_eq!(Spi::get_one::<i32>("SELECT 41 + 1").unwrap(), Some(42), "the same backend still answers");
    }
}
