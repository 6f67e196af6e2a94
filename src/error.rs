//! Every error the extension raises goes through here, so each one carries a SQLSTATE
//! from DESIGN.md and a message a DBA can act on (and never a token or key).
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
pub use pgrx::PgSqlErrorCode as Code;

/// Raise an ERROR with `code` and `message`. Never returns.
pub fn raise(code: Code, message: impl Into<String>) -> ! {
    ErrorReport::new(code, message.into(), "health_rls").report(PgLogLevel::ERROR);
    unreachable!("ERROR returned")
}

/// Raise an ERROR with a DETAIL line (for data the caller may want to read, never secrets).
pub fn raise_with_detail(code: Code, message: impl Into<String>, detail: impl Into<String>) -> ! {
    ErrorReport::new(code, message.into(), "health_rls")
        .set_detail(detail.into())
        .report(PgLogLevel::ERROR);
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

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// Test-only: a Rust panic inside a SQL-callable function.
    #[pg_extern]
    fn health_rls_test_panic() -> i32 {
        panic!("deliberate panic for the test")
    }

    #[pg_test]
    fn a_panic_becomes_an_error_and_the_backend_lives_on() {
        let message = PgTryBuilder::new(|| {
            Spi::get_one::<i32>("SELECT tests.health_rls_test_panic()").ok();
            None
        })
        .catch_others(|e| match e {
            pg_sys::panic::CaughtError::PostgresError(r) | pg_sys::panic::CaughtError::ErrorReport(r) | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => {
                Some(r.message().to_string())
            }
        })
        .execute();
        assert!(message.is_some_and(|m| m.contains("deliberate panic")), "the panic surfaced as an ERROR");
        assert_eq!(Spi::get_one::<i32>("SELECT 41 + 1").unwrap(), Some(42), "the same backend still answers");
    }
}
