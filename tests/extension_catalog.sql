-- The catalog signature of the installed dbanalytics: one line per fact about the extension and
-- every object it owns, free of OIDs and of creation order, sorted. Two databases whose
-- signatures are equal have the same extension objects, definitions, privileges and dump
-- configuration. tests/e2e_upgrade.sh compares an upgraded database with a fresh install.
-- Runs with search_path = pg_catalog so that every name outside pg_catalog prints qualified.
SET search_path = pg_catalog;

-- ACLs compared as sets: GRANTs made in another order give the same privileges.
CREATE FUNCTION pg_temp.acl(aclitem[]) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest($1) a), '(default)') $$;

WITH ext AS (
    SELECT oid FROM pg_extension WHERE extname = 'dbanalytics'
), members AS (
    SELECT d.classid, d.objid
      FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), member_rels AS (
    SELECT c.oid, c.oid::regclass::text AS name
      FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
    UNION  -- the relation behind a composite type
    SELECT t.typrelid, t.typrelid::regclass::text
      FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
     WHERE t.typrelid <> 0
), lines AS (
    SELECT format('extension version=%s relocatable=%s schema=%s', e.extversion, e.extrelocatable,
                  e.extnamespace::regnamespace)
      FROM pg_extension e, ext WHERE e.oid = ext.oid
    UNION ALL
    -- which tables pg_dump dumps the rows of, and with which filter
    SELECT format('config_dump %s filter=%L', cfg.rel::regclass, cfg.cond)
      FROM pg_extension e, ext,
           unnest(e.extconfig, e.extcondition) AS cfg(rel, cond)
     WHERE e.oid = ext.oid
    UNION ALL
    SELECT format('member %s %s', i.type, i.identity)
      FROM members m, pg_identify_object(m.classid, m.objid, 0) i
    UNION ALL
    SELECT format('schema %s owner=%s acl=%s comment=%L', n.nspname, pg_get_userbyid(n.nspowner),
                  pg_temp.acl(n.nspacl), obj_description(n.oid, 'pg_namespace'))
      FROM members m JOIN pg_namespace n ON m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
    UNION ALL
    -- functions: signature, body, language, volatility, strictness, SET clauses, security
    SELECT format('function %s owner=%s acl=%s comment=%L def=%s', p.oid::regprocedure,
                  pg_get_userbyid(p.proowner), pg_temp.acl(p.proacl),
                  obj_description(p.oid, 'pg_proc'),
                  CASE WHEN p.prokind = 'a'
                       THEN (SELECT format('aggregate sfunc=%s stype=%s finalfn=%s combine=%s init=%L',
                                           a.aggtransfn, a.aggtranstype::regtype, a.aggfinalfn,
                                           a.aggcombinefn, a.agginitval)
                               FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
                       ELSE pg_get_functiondef(p.oid) END)
      FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
    UNION ALL
    SELECT format('relation %s kind=%s persistence=%s owner=%s acl=%s options=%s partkey=%s rls=%s/%s comment=%L',
                  r.name, c.relkind, c.relpersistence, pg_get_userbyid(c.relowner), pg_temp.acl(c.relacl),
                  c.reloptions, pg_get_partkeydef(c.oid), c.relrowsecurity, c.relforcerowsecurity,
                  obj_description(c.oid, 'pg_class'))
      FROM member_rels r JOIN pg_class c ON c.oid = r.oid
    UNION ALL
    -- columns in their order (dropped ones left out, so the rank is what SELECT * shows)
    SELECT format('column %s #%s %s type=%s notnull=%s default=%s identity=%L generated=%L collation=%s acl=%s comment=%L',
                  r.name, rank() OVER (PARTITION BY a.attrelid ORDER BY a.attnum), a.attname,
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
                  CASE WHEN a.attcollation <> 0 THEN a.attcollation::regcollation::text END,
                  pg_temp.acl(a.attacl), col_description(a.attrelid, a.attnum))
      FROM member_rels r
      JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    UNION ALL
    SELECT format('view %s def=%s', r.name, pg_get_viewdef(r.oid, true))
      FROM member_rels r JOIN pg_class c ON c.oid = r.oid WHERE c.relkind IN ('v', 'm')
    UNION ALL
    SELECT format('constraint %s %s %s', r.name, co.conname, pg_get_constraintdef(co.oid))
      FROM member_rels r JOIN pg_constraint co ON co.conrelid = r.oid
    UNION ALL
    SELECT format('index %s %s', r.name, pg_get_indexdef(i.indexrelid))
      FROM member_rels r JOIN pg_index i ON i.indrelid = r.oid
    UNION ALL
    SELECT format('trigger %s %s', r.name, pg_get_triggerdef(t.oid))
      FROM member_rels r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT format('policy %s %s cmd=%s permissive=%s roles=%s using=%s check=%s', r.name, po.polname,
                  po.polcmd, po.polpermissive, po.polroles::regrole[],
                  pg_get_expr(po.polqual, po.polrelid), pg_get_expr(po.polwithcheck, po.polrelid))
      FROM member_rels r JOIN pg_policy po ON po.polrelid = r.oid
    UNION ALL
    SELECT format('sequence %s type=%s start=%s increment=%s min=%s max=%s cache=%s cycle=%s owned_by=%s',
                  s.seqrelid::regclass, s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin,
                  s.seqmax, s.seqcache, s.seqcycle,
                  (SELECT format('%s.%s', dd.refobjid::regclass, at.attname)
                     FROM pg_depend dd JOIN pg_attribute at ON at.attrelid = dd.refobjid AND at.attnum = dd.refobjsubid
                    WHERE dd.classid = 'pg_class'::regclass AND dd.objid = s.seqrelid
                      AND dd.refclassid = 'pg_class'::regclass AND dd.deptype IN ('a', 'i')))
      FROM pg_sequence s
     WHERE s.seqrelid IN (SELECT oid FROM member_rels)
        OR s.seqrelid IN (SELECT dd.objid FROM pg_depend dd
                           WHERE dd.classid = 'pg_class'::regclass AND dd.refclassid = 'pg_class'::regclass
                             AND dd.deptype IN ('a', 'i') AND dd.refobjid IN (SELECT oid FROM member_rels))
    UNION ALL
    SELECT format('type %s kind=%s owner=%s acl=%s base=%s notnull=%s default=%L labels=%s comment=%L',
                  t.oid::regtype, t.typtype, pg_get_userbyid(t.typowner), pg_temp.acl(t.typacl),
                  CASE WHEN t.typbasetype <> 0 THEN format_type(t.typbasetype, t.typtypmod) END,
                  t.typnotnull, t.typdefault,
                  (SELECT string_agg(en.enumlabel, ',' ORDER BY en.enumsortorder) FROM pg_enum en WHERE en.enumtypid = t.oid),
                  obj_description(t.oid, 'pg_type'))
      FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
    UNION ALL
    SELECT format('domain_constraint %s %s %s', t.oid::regtype, co.conname, pg_get_constraintdef(co.oid))
      FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
      JOIN pg_constraint co ON co.contypid = t.oid
    UNION ALL
    -- the privileges pg_dump takes as the extension's own (changes to them are dumped)
    SELECT format('init_privs %s %s %s %s', i.type, i.identity, ip.privtype, pg_temp.acl(ip.initprivs))
      FROM pg_init_privs ip, pg_identify_object(ip.classoid, ip.objoid, ip.objsubid) i
     WHERE (ip.classoid, ip.objoid) IN (SELECT classid, objid FROM members)
        OR (ip.classoid = 'pg_class'::regclass AND ip.objoid IN (SELECT oid FROM member_rels))
    UNION ALL
    -- what the extension's objects depend on (besides the extension and the schema)
    SELECT format('depends %s %s -> %s %s (%s)', o.type, o.identity, rf.type, rf.identity, d.deptype)
      FROM pg_depend d
      JOIN members m ON (d.classid, d.objid) = (m.classid, m.objid)
        OR (d.classid = 'pg_class'::regclass AND d.objid IN (SELECT oid FROM member_rels)),
           pg_identify_object(d.classid, d.objid, d.objsubid) o,
           pg_identify_object(d.refclassid, d.refobjid, d.refobjsubid) rf
     WHERE d.deptype IN ('n', 'a')
       AND d.refclassid NOT IN ('pg_extension'::regclass, 'pg_namespace'::regclass)
       AND d.refobjid >= 16384  -- not a built-in object
)
SELECT DISTINCT * FROM lines ORDER BY 1;
