//! Conversions between the `uuid` crate (what the pure cores use) and pgrx's SQL `uuid`.
pub fn to_pg(u: ::uuid::Uuid) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*u.as_bytes())
}

pub fn from_pg(u: pgrx::Uuid) -> ::uuid::Uuid {
    ::uuid::Uuid::from_bytes(*u.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        let u = ::uuid::Uuid::parse_str("11111111-1111-4111-8111-111111111111").unwrap();
        assert_eq!(super::from_pg(super::to_pg(u)), u);
    }
}
