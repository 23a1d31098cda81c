//! The one way dbanalytics talks SQL from Rust: read helpers and write helpers, with or without
//! arguments. Every statement passed here is schema-qualified; values are passed as typed
//! arguments (`$1`, ...), never pasted into the text. DDL, which takes no arguments, is the
//! exception: partition names and bounds are built by dbanalytics itself from its own table
//! names and dates (src/storage/partitions.rs), and the advisor quotes the identifiers it reads
//! from the catalog with the server's `quote_identifier`.

use pgrx::datum::{DatumWithOid, FromDatum, IntoDatum};
use pgrx::prelude::*;

/// First column of the first row, `None` for no row or NULL.
pub fn select_one<T: FromDatum + IntoDatum>(sql: &str) -> Result<Option<T>, pgrx::spi::Error> {
    Spi::connect(|client| {
        let table = client.select(sql, Some(1), &[])?;
        if table.is_empty() {
            Ok(None)
        } else {
            table.first().get_one::<T>()
        }
    })
}

/// First column of the first row of a query with arguments, `None` for no row or NULL.
pub fn select_one_with_args<T: FromDatum + IntoDatum>(
    sql: &str,
    args: &[DatumWithOid],
) -> Result<Option<T>, pgrx::spi::Error> {
    Spi::connect(|client| {
        let table = client.select(sql, Some(1), args)?;
        if table.is_empty() {
            Ok(None)
        } else {
            table.first().get_one::<T>()
        }
    })
}

/// Three columns of one row, each `None` for NULL.
pub type Row3<A, B, C> = (Option<A>, Option<B>, Option<C>);

/// The first three columns of the first row of a query with arguments, `None` for no row.
pub fn select_row3<A: FromDatum + IntoDatum, B: FromDatum + IntoDatum, C: FromDatum + IntoDatum>(
    sql: &str,
    args: &[DatumWithOid],
) -> Result<Option<Row3<A, B, C>>, pgrx::spi::Error> {
    Spi::connect(|client| {
        let table = client.select(sql, Some(1), args)?;
        if table.is_empty() {
            Ok(None)
        } else {
            table.first().get_three::<A, B, C>().map(Some)
        }
    })
}

/// All rows of a query whose first column is text.
pub fn select_texts(sql: &str) -> Result<Vec<String>, pgrx::spi::Error> {
    Spi::connect(|client| {
        let mut names = Vec::new();
        for row in client.select(sql, None, &[])? {
            if let Some(name) = row.get::<String>(1)? {
                names.push(name);
            }
        }
        Ok(names)
    })
}

/// Runs a statement that writes.
pub fn execute(sql: &str) -> Result<(), pgrx::spi::Error> {
    Spi::run(sql)
}

/// Runs a statement with arguments that writes (or changes settings).
pub fn execute_with_args(sql: &str, args: &[DatumWithOid]) -> Result<(), pgrx::spi::Error> {
    Spi::run_with_args(sql, args)
}

/// Runs a statement that writes and returns one value (first column of the first row).
pub fn execute_returning<T: FromDatum + IntoDatum>(
    sql: &str,
) -> Result<Option<T>, pgrx::spi::Error> {
    Spi::get_one::<T>(sql)
}

/// Runs a statement with arguments that writes and returns one value (first column of the
/// first row).
pub fn execute_returning_with_args<T: FromDatum + IntoDatum>(
    sql: &str,
    args: &[DatumWithOid],
) -> Result<Option<T>, pgrx::spi::Error> {
    Spi::get_one_with_args::<T>(sql, args)
}
