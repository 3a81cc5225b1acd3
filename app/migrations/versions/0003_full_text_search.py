"""full-text search over captured requests, kept by the database itself

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The index is maintained by triggers, not by application code: whatever inserts into or deletes
from ``requests`` and ``payloads`` (the capture path, retention, clear, delete, a bin's cascade,
a bulk load, a script) keeps it right without knowing it exists.

What is indexed for each request: its method, path and query string as received; every header
name and value; and the body as text, its first 64 KiB only (BODY_LIMIT), so a 10 MiB body costs
no more to capture than a 64 KiB one. A body with a NUL byte in that part is taken to be binary
and is not indexed; text that is not valid UTF-8 is indexed as far as each engine can read it.
Headers are indexed up to 64 KiB of text. Words are runs of letters and digits; everything else
(ASCII punctuation included) separates them; case does not matter, accents do. In the path, the
query string and form bodies, percent-escapes of punctuation (``%40``, ``%2F``, ``%20``) separate
words as the character itself would, so ``a%40b.com`` is found by ``a@b.com``.

SQLite: an FTS5 table with *external content*. Contentless-delete tables (delete by rowid alone)
need SQLite 3.43; Debian 12 ships 3.40. A plain FTS5 table would keep a second copy of up to
128 KiB of text per request. External content stores only the index: its content is the view
``request_search_source``, which computes each request's indexed text from its rows. FTS5 must be
told the exact text of a row it removes, so the delete triggers fire BEFORE the delete, read the
row's text from the view (still there) and hand it to FTS5's documented 'delete' command. The one
view feeds inserts, deletes and the backfill, so they cannot disagree. (FTS5's own 'rebuild' is not
used: it reads the view in a mode that refuses table-valued functions such as json_tree.) A
``bin`` column holds the hex of the bin id, one token per bin, so a search is narrowed to its bin
inside the index. The FTS rowid is ``requests.id``.

PostgreSQL: a ``tsvector`` column on ``payloads`` with a GIN index, set by a BEFORE INSERT
trigger; deleting the row deletes its index entries, so deletions need no trigger. Text goes
through ``hookscope_search_words`` (ASCII punctuation to spaces) and the ``simple`` configuration
(no stemming, no stop words), which splits words as SQLite's unicode61 does; without it the
parser would keep ``user@example.com`` or ``/stripe/events`` as one token. ``convert_from``
raises on invalid UTF-8, so bodies that fail it are read as Latin-1 instead (their ASCII words
stay searchable) inside a plpgsql exception block; no insert fails because of its bytes. The
document also holds the lexeme ``#<bin id>``, which no searched word can be, so the GIN index can
be asked for one bin's matches.

A later migration that rebuilds ``requests`` or ``payloads`` on SQLite (``batch_alter_table``)
must call ``drop_sqlite()`` first and ``create_sqlite()`` after, then index the rows again as
``upgrade()`` does: dropping the tables drops their triggers, and the view would stop the rename.
A change to what the view computes needs the same: FTS5 removes a row by the text it is given.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BODY_LIMIT = 65536  # bytes of body indexed
HEADERS_LIMIT = 65536  # characters of header names and values indexed

FORM = "application/x-www-form-urlencoded%"
# The percent-escapes encoders write most (uppercase hex, as RFC 3986 asks) for space and the
# punctuation of emails, URLs, paths and JSON sent as a form field: each becomes a space. Not
# every punctuation character in both cases: SQLite's parser refuses replace() nested deeper.
ESCAPES = [f"%{ord(c):02X}" for c in ' "#%&+,/:=?@[]{}']


def unescaped(expression):
    """SQL (both engines) for ``expression`` with each punctuation escape made a space."""
    for escape in ESCAPES:
        expression = f"replace({expression}, '{escape}', ' ')"
    return expression


SQLITE_VIEW = f"""
CREATE VIEW request_search_source AS
SELECT
  r.id AS id,
  hex(r.bin_id) AS bin,
  r.method || ' ' || {unescaped("r.path || ' ' || r.query_string")} AS target,
  substr(
    CASE
      -- Without escapes, the JSON text splits into exactly the words of its strings.
      WHEN instr(p.headers, '\\') = 0 OR NOT json_valid(p.headers) THEN p.headers
      ELSE (SELECT group_concat(j.value, ' ') FROM json_tree(p.headers) AS j WHERE j.type = 'text')
    END, 1, {HEADERS_LIMIT}) AS headers,
  CASE
    WHEN typeof(p.body) = 'blob' AND instr(substr(p.body, 1, {BODY_LIMIT}), x'00') > 0 THEN NULL
    WHEN r.content_type LIKE '{FORM}'
      THEN {unescaped(f"CAST(substr(p.body, 1, {BODY_LIMIT}) AS TEXT)")}
    ELSE CAST(substr(p.body, 1, {BODY_LIMIT}) AS TEXT)
  END AS body
FROM requests AS r JOIN payloads AS p ON p.request_id = r.id
"""

# columnsize=0: no per-row token counts (only ranking uses them; we sort by recency). No prefix
# index (prefix='2 3' made short prefix queries instant on a million requests, but tripled the
# index's cost per insert and grew the file by 40%); app/search.py asks for 3+ characters.
SQLITE_TABLE = """
CREATE VIRTUAL TABLE request_search USING fts5(
  bin, target, headers, body,
  content='request_search_source', content_rowid='id',
  columnsize=0, tokenize='unicode61 remove_diacritics 0'
)
"""

_INDEX = """
  INSERT INTO request_search(rowid, bin, target, headers, body)
  SELECT id, bin, target, headers, body FROM request_search_source WHERE id = {id};
"""
_UNINDEX = """
  INSERT INTO request_search(request_search, rowid, bin, target, headers, body)
  SELECT 'delete', id, bin, target, headers, body FROM request_search_source WHERE id = {id};
"""
SQLITE_TRIGGERS = [
    ("payloads_search_insert", "AFTER INSERT ON payloads", _INDEX.format(id="NEW.request_id")),
    # In a cascade from requests the request row is already gone and this finds nothing to do;
    # it matters when a payload is deleted on its own.
    ("payloads_search_delete", "BEFORE DELETE ON payloads", _UNINDEX.format(id="OLD.request_id")),
    ("requests_search_delete", "BEFORE DELETE ON requests", _UNINDEX.format(id="OLD.id")),
    # Captured data is never changed, but if a script does, the index follows.
    (
        "payloads_search_unindex",
        "BEFORE UPDATE OF request_id, headers, body ON payloads",
        _UNINDEX.format(id="OLD.request_id"),
    ),
    (
        "payloads_search_reindex",
        "AFTER UPDATE OF request_id, headers, body ON payloads",
        _INDEX.format(id="NEW.request_id"),
    ),
    (
        "requests_search_unindex",
        "BEFORE UPDATE OF id, bin_id, method, path, query_string, content_type ON requests",
        _UNINDEX.format(id="OLD.id"),
    ),
    (
        "requests_search_reindex",
        "AFTER UPDATE OF id, bin_id, method, path, query_string, content_type ON requests",
        _INDEX.format(id="NEW.id"),
    ),
]


def create_sqlite():
    """Create the view, the FTS5 table and the triggers that keep it (it starts empty)."""
    op.execute(SQLITE_VIEW)
    op.execute(SQLITE_TABLE)
    for name, when, body in SQLITE_TRIGGERS:
        op.execute(f"CREATE TRIGGER {name} {when} FOR EACH ROW BEGIN\n{body}END")


def drop_sqlite():
    for name, _, _ in SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS request_search")
    op.execute("DROP VIEW IF EXISTS request_search_source")


# The 32 ASCII punctuation characters, each made a space (nested replace() measured 6x faster
# than translate() and regexp_replace() on PostgreSQL 15).
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def spaced(expression):
    """PostgreSQL SQL for ``expression`` with every ASCII punctuation character made a space."""
    for char in PUNCTUATION:
        expression = f"replace({expression}, '{char.replace(chr(39), chr(39) * 2)}', ' ')"
    return expression


POSTGRES_FUNCTIONS = [
    f"""
CREATE FUNCTION hookscope_search_words(words text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN {spaced("words")}
""",
    f"""
CREATE FUNCTION hookscope_search_document(
  bin_id text, method text, path text, query_string text, content_type text, headers json,
  body bytea
) RETURNS tsvector LANGUAGE plpgsql STABLE PARALLEL SAFE AS $body$
DECLARE
  head bytea := substring(body FROM 1 FOR {BODY_LIMIT});
  header_text text := headers::text;
  body_text text;
  last_start int;
  lead_byte int;
  width int;
BEGIN
  IF length(body) > {BODY_LIMIT} THEN
    -- Cut before a UTF-8 character that the limit would split in two.
    last_start := {BODY_LIMIT};
    WHILE last_start > {BODY_LIMIT - 3} AND get_byte(head, last_start - 1) & 192 = 128 LOOP
      last_start := last_start - 1;
    END LOOP;
    lead_byte := get_byte(head, last_start - 1);
    width := CASE WHEN lead_byte >= 240 THEN 4 WHEN lead_byte >= 224 THEN 3
                  WHEN lead_byte >= 192 THEN 2 ELSE 1 END;
    IF last_start - 1 + width > {BODY_LIMIT} THEN
      head := substring(head FROM 1 FOR last_start - 1);
    END IF;
  END IF;
  -- Without escapes, the JSON text splits into exactly the words of its strings; with them
  -- (\\u00e9, \\"), read the strings, unless they hold what text cannot (\\u0000).
  IF position('\\' IN header_text) > 0 THEN
    BEGIN
      SELECT string_agg(v, ' ') INTO header_text
        FROM json_array_elements(headers) AS pair, json_array_elements_text(pair) AS v;
    EXCEPTION WHEN OTHERS THEN
      header_text := headers::text;
    END;
  END IF;
  IF position('\\x00'::bytea IN head) = 0 THEN  -- a NUL byte: binary, not indexed
    BEGIN
      body_text := convert_from(head, 'UTF8');
    EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
      -- Not UTF-8: Latin-1 reads every byte, so its ASCII words stay searchable.
      body_text := convert_from(head, 'LATIN1');
    END;
    IF content_type ILIKE '{FORM}' THEN
      body_text := {unescaped("body_text")};
    END IF;
  END IF;
  -- The bin's own lexeme, '#<bin id>', lets a search ask the GIN index for one bin only;
  -- searched words hold letters and digits only, so none can be it.
  RETURN to_tsvector('simple', hookscope_search_words(concat_ws(' ',
    method, {unescaped("path || ' ' || query_string")},
    left(header_text, {HEADERS_LIMIT}), body_text)))
    || array_to_tsvector(ARRAY['#' || bin_id]);
END
$body$
""",
    """
CREATE FUNCTION hookscope_payloads_search() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  SELECT hookscope_search_document(
           bin_id, method, path, query_string, content_type, NEW.headers, NEW.body)
    INTO NEW.search_document FROM requests WHERE id = NEW.request_id;
  RETURN NEW;
END
$body$
""",
    """
CREATE FUNCTION hookscope_requests_search() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  UPDATE payloads
     SET search_document = hookscope_search_document(
       NEW.bin_id, NEW.method, NEW.path, NEW.query_string, NEW.content_type, headers, body)
   WHERE request_id = NEW.id;
  RETURN NULL;
END
$body$
""",
]
POSTGRES_TRIGGERS = [
    "CREATE TRIGGER payloads_search BEFORE INSERT OR UPDATE OF request_id, headers, body"
    " ON payloads FOR EACH ROW EXECUTE FUNCTION hookscope_payloads_search()",
    # Captured data is never changed, but if a script does, the index follows.
    "CREATE TRIGGER requests_search"
    " AFTER UPDATE OF bin_id, method, path, query_string, content_type"
    " ON requests FOR EACH ROW EXECUTE FUNCTION hookscope_requests_search()",
]


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        create_sqlite()
        # Index what is already stored. Not with FTS5's 'rebuild': it reads the view in a mode
        # that refuses table-valued functions such as json_tree.
        op.execute(
            "INSERT INTO request_search(rowid, bin, target, headers, body)"
            " SELECT id, bin, target, headers, body FROM request_search_source"
        )
        return
    op.add_column("payloads", sa.Column("search_document", sa.dialects.postgresql.TSVECTOR()))
    for statement in POSTGRES_FUNCTIONS + POSTGRES_TRIGGERS:
        op.execute(statement)
    # Index what is already stored, then build the GIN index in one pass.
    op.execute(
        "UPDATE payloads SET search_document = hookscope_search_document(r.bin_id, r.method,"
        " r.path, r.query_string, r.content_type, payloads.headers, payloads.body)"
        " FROM requests AS r WHERE r.id = payloads.request_id"
    )
    op.execute(
        "CREATE INDEX ix_payloads_search_document ON payloads USING gin (search_document)"
    )


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        drop_sqlite()
        return
    op.execute("DROP TRIGGER IF EXISTS requests_search ON requests")
    op.execute("DROP TRIGGER IF EXISTS payloads_search ON payloads")
    op.drop_index("ix_payloads_search_document", table_name="payloads")
    op.drop_column("payloads", "search_document")
    for name in (
        "hookscope_requests_search()",
        "hookscope_payloads_search()",
        "hookscope_search_document(text, text, text, text, text, json, bytea)",
        "hookscope_search_words(text)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {name}")
