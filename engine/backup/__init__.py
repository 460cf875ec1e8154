"""Backup and restore: one archive holding the database and every evidence file, and its way back.

A 巡察整改台账 is evidence, and so are its files: evidence over ``[evidence] inline_max_bytes`` lives
in the store folder, not the database, so a database-only backup would lose it. ``duban backup
FILE`` writes ONE archive: an uncompressed POSIX (pax) tar — readable by any ``tar`` without duban,
written and read as a stream of any size, and not worth compressing (evidence is PDF, Word and
photos, compressed already; PostgreSQL's dump compresses itself) — holding

* ``database/duban.sqlite3`` (SQLite's online backup API: one consistent snapshot while the daemon
  writes) or ``database/duban.pgdump`` (``pg_dump --format=custom`` of an exported snapshot),
* ``evidence/<SHA-256>``: every file of the store, and those older rows keep outside it,
* ``MANIFEST.json`` (last, as only then are the hashes known): the SHA-256 and size of every other
  member, the schema revision, the duban version, the time in the configured zone, the counts.

The archive is written to a temporary file beside FILE, synced, then renamed over FILE: a backup
killed midway leaves the previous archive as it was. ``duban restore FILE`` fills an *empty*
database and an *empty* evidence folder, refusing anything else; every member is hashed against
the manifest before anything is put in place (a damaged archive names its member), and the schema
is upgraded afterwards when the archive is older than this duban (``manifest``, ``database``,
``archive``, ``restore``).
"""
