-- dbanalytics 0.1.0 -> 0.2.0
--
-- Append-only: 0.1.0 (tag v0.1.0) is released, so its install script is frozen and every
-- change to the catalog since then is made here as well as in the install sources under sql/.
-- tests/e2e_upgrade.sh checks that an upgraded database's catalog equals a fresh install's.
--
-- Like every script of this extension it runs with search_path = @extschema@, pg_catalog
-- set by CREATE/ALTER EXTENSION: every name is schema-qualified all the same.

\echo Use "ALTER EXTENSION dbanalytics UPDATE TO '0.2.0'" to load this file. \quit
