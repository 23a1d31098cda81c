//! In-server tests (`cargo pgrx test`), run with the library preloaded.
use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn preloaded_in_tests() {
        assert_eq!(
            Spi::get_one::<bool>("SELECT dbanalytics.collection_preloaded()"),
            Ok(Some(true))
        );
    }
}
