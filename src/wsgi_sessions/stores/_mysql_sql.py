"""The MySQL/MariaDB store's schema: two tables and the stored procedures that
make each store operation one round trip.

MySQL has no ``UPDATE ... RETURNING``, so an operation whose answer depends on
what it found (applied / ended / absent) cannot be one plain statement; each
is one ``CALL`` of a procedure made with the table. Locking reads
(``SELECT ... FOR UPDATE``) read the newest committed row whatever the
isolation level, so the procedures are atomic per row under MySQL's default
REPEATABLE READ as under READ COMMITTED. Expiry is compared with the
database's own clock (``UTC_TIMESTAMP(6)``, independent of the session time
zone), never the app server's.

The procedure names carry a version: a later release that changes a body
adds new procedures instead of racing to replace the ones running workers call.
"""

from __future__ import annotations

from .base import MAX_SUCCESSORS

__all__ = ["NAME_BYTES", "PROCEDURES", "TABLES", "schema_statements", "statements"]

# Two tables. {table}: one row per session key, live while expires_at is in
# the future (the database's UTC clock); an ended marker when ended_at is set
# (the app's epoch seconds, as Ended.at is compared with the app's clock).
# {table}_fields: one row per session key and field, so that a write touches
# only the rows of the fields it names, whatever the session's size.
#
# Why not one JSON document per session with JSON_MERGE_PATCH / JSON_SET:
# MariaDB's implementations are quadratic in the number of keys (measured on
# 10.11: 42 ms to set one key of a 10,000-key session, 7.5 s to merge 4,000
# keys into 4,000); rows scale linearly on MySQL and MariaDB alike. A write's
# fields still cross the wire in one CALL, as a JSON array that JSON_TABLE
# unpacks into rows.
TABLES = (
    """CREATE TABLE IF NOT EXISTS {table} (
    session_key VARBINARY(255) NOT NULL PRIMARY KEY,
    lifetime INT NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    successor VARBINARY(255) NULL,
    ended_at DOUBLE NULL,
    INDEX {table}_expires_at (expires_at)
) ENGINE=InnoDB""",
    """CREATE TABLE IF NOT EXISTS {table}_fields (
    session_key VARBINARY(255) NOT NULL,
    name VARBINARY({name_bytes}) NOT NULL,
    value LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (session_key, name)
) ENGINE=InnoDB""",
)

#: The longest field name, in UTF-8 bytes (InnoDB keys are at most 3072 bytes).
NAME_BYTES = 2800

_NOW = "UTC_TIMESTAMP(6)"

# Undo a half-done transaction before the error reaches the client: the
# connection must never go back to the pool inside an open transaction.
_ON_ERROR = "DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;"

# A write's fields: sets as [[name, value], ...], deletes as [name, ...].
_SETS = (
    "JSON_TABLE(sets, '$[*]' COLUMNS (name VARBINARY({name_bytes}) PATH '$[0]', "
    "value LONGTEXT CHARACTER SET utf8mb4 PATH '$[1]')) AS j"
)
_DELETES = "JSON_TABLE(deletes, '$[*]' COLUMNS (name VARBINARY({name_bytes}) PATH '$')) AS d"

# The fields of a session, with its marker state: one row per field, or one
# row of NULLs for a session with none (and for a marker).
_SELECT = (
    "SELECT s.ended_at, f.name, f.value FROM {table} AS s "
    "LEFT JOIN {table}_fields AS f ON f.session_key = s.session_key "
    "WHERE s.session_key = {key} AND s.expires_at > {now}"
)

# name -> (parameters, body); schema_statements() fills in the {names}.
PROCEDURES: dict[str, tuple[str, str]] = {
    # A touch that finds an ended marker leaves its expiry alone. One
    # transaction, so the fields read are those of the touched session.
    "load_touch": (
        "IN k VARBINARY(255)",
        """
  {on_error}
  START TRANSACTION;
  UPDATE {table} SET expires_at = {now} + INTERVAL lifetime SECOND
    WHERE session_key = k AND expires_at > {now} AND ended_at IS NULL;
  {select_k};
  COMMIT;""",
    ),
    # Insert-only: a duplicate key (a live row or marker, or a concurrent
    # create that won) is the answer 0. An expired row (and its fields) is
    # cleared first; a fresh key (the usual case) takes no gap lock.
    "create": (
        "IN k VARBINARY(255), IN sets LONGTEXT CHARSET utf8mb4, IN life INT",
        """
  DECLARE created INT DEFAULT 1;
  DECLARE CONTINUE HANDLER FOR 1062 SET created = 0;
  {on_error}
  START TRANSACTION;
  IF EXISTS (SELECT 1 FROM {table} WHERE session_key = k AND expires_at <= {now}) THEN
    -- The fields go only with the expired row this DELETE removed (and now
    -- holds locked), never with a live one another create just made.
    DELETE FROM {table} WHERE session_key = k AND expires_at <= {now};
    IF ROW_COUNT() > 0 THEN DELETE FROM {table}_fields WHERE session_key = k; END IF;
  END IF;
  INSERT INTO {table} (session_key, lifetime, expires_at)
    VALUES (k, life, {now} + INTERVAL life SECOND);
  IF created = 1 THEN
    INSERT INTO {table}_fields (session_key, name, value)
      SELECT k, j.name, j.value FROM {sets};
  END IF;
  COMMIT;
  SELECT created;""",
    ),
    # Answers (rows found, ended_at): (1, NULL) applied, (1, t) ended, (0, NULL) absent.
    # The locking read holds the session row until COMMIT: an end or rename
    # waits for this write, or this write sees it and writes nothing.
    "apply": (
        "IN k VARBINARY(255), IN sets LONGTEXT CHARSET utf8mb4, "
        "IN deletes LONGTEXT CHARSET utf8mb4, IN life INT",
        """
  DECLARE n INT;
  DECLARE e DOUBLE;
  {on_error}
  START TRANSACTION;
  SELECT COUNT(*), MAX(ended_at) INTO n, e FROM {table}
    WHERE session_key = k AND expires_at > {now} FOR UPDATE;
  IF n = 1 AND e IS NULL THEN
    UPDATE {table} SET lifetime = COALESCE(life, lifetime),
        expires_at = {now} + INTERVAL COALESCE(life, lifetime) SECOND
      WHERE session_key = k;
    IF deletes IS NOT NULL THEN
      DELETE f FROM {table}_fields AS f JOIN {deletes}
        ON f.session_key = k AND f.name = d.name;
    END IF;
    IF sets IS NOT NULL THEN
      INSERT INTO {table}_fields (session_key, name, value)
        SELECT k, j.name, j.value FROM {sets}
        ON DUPLICATE KEY UPDATE value = VALUES(value);
    END IF;
  END IF;
  COMMIT;
  SELECT n, e;""",
    ),
    # The loop of Store.end, each step a locking read, all in one transaction.
    "end": (
        "IN k VARBINARY(255), IN at_ DOUBLE, IN grace INT",
        """
  DECLARE target VARBINARY(255) DEFAULT k;
  DECLARE n INT;
  DECLARE e DOUBLE;
  DECLARE s VARBINARY(255);
  DECLARE steps INT DEFAULT 0;
  DECLARE ended INT DEFAULT 0;
  {on_error}
  START TRANSACTION;
  chain: WHILE steps <= {max_successors} DO
    SELECT COUNT(*), MAX(ended_at), MAX(successor) INTO n, e, s FROM {table}
      WHERE session_key = target AND expires_at > {now} FOR UPDATE;
    IF n = 0 THEN LEAVE chain; END IF;
    IF e IS NULL THEN
      DELETE FROM {table}_fields WHERE session_key = target;
      UPDATE {table} SET ended_at = at_, successor = NULL,
          expires_at = GREATEST(expires_at, {now} + INTERVAL grace SECOND)
        WHERE session_key = target;
      SET ended = 1;
      LEAVE chain;
    END IF;
    IF s IS NULL THEN LEAVE chain; END IF;
    SET target = s, steps = steps + 1;
  END WHILE;
  COMMIT;
  SELECT ended;""",
    ),
    # Answers as apply does. Whatever was at new_k (nothing, but for a
    # collision of 192-bit ids) is replaced, as the other stores do.
    "rename": (
        "IN old_k VARBINARY(255), IN new_k VARBINARY(255), IN at_ DOUBLE, IN grace INT",
        """
  DECLARE n INT;
  DECLARE e DOUBLE;
  {on_error}
  START TRANSACTION;
  SELECT COUNT(*), MAX(ended_at) INTO n, e FROM {table}
    WHERE session_key = old_k AND expires_at > {now} FOR UPDATE;
  IF n = 1 AND e IS NULL THEN
    DELETE FROM {table}_fields WHERE session_key = new_k;
    DELETE FROM {table} WHERE session_key = new_k;
    INSERT INTO {table} (session_key, lifetime, expires_at)
      SELECT new_k, lifetime, expires_at FROM {table} WHERE session_key = old_k;
    UPDATE {table}_fields SET session_key = new_k WHERE session_key = old_k;
    UPDATE {table} SET ended_at = at_, successor = new_k,
        expires_at = GREATEST(expires_at, {now} + INTERVAL grace SECOND)
      WHERE session_key = old_k;
  END IF;
  COMMIT;
  SELECT n, e;""",
    ),
    # Whether the record is live after the touch (a rename in between: not
    # live, which is what the caller asks: may the id be sent again).
    "touch": (
        "IN k VARBINARY(255)",
        """
  UPDATE {table} SET expires_at = {now} + INTERVAL lifetime SECOND
    WHERE session_key = k AND expires_at > {now} AND ended_at IS NULL;
  SELECT COUNT(*) FROM {table}
    WHERE session_key = k AND expires_at > {now} AND ended_at IS NULL;""",
    ),
    # One cut-off for both tables: a row expired by then stays expired (no
    # write revives an expired row; create replaces it, with a later expiry).
    "purge": (
        "",
        """
  DECLARE cut DATETIME(6) DEFAULT {now};
  DECLARE purged INT;
  DELETE f FROM {table}_fields AS f JOIN {table} AS s ON s.session_key = f.session_key
    WHERE s.expires_at <= cut;
  DELETE FROM {table} WHERE expires_at <= cut;
  SET purged = ROW_COUNT();
  SELECT purged;""",
    ),
}

#: The procedures' version, part of their names (see the module docstring).
VERSION = "v1"

_ARITY = {
    "load_touch": 1,
    "create": 3,
    "apply": 4,
    "end": 3,
    "rename": 4,
    "touch": 1,
    "purge": 0,
}


def procedure_name(table: str, operation: str) -> str:
    return f"{table}_{operation}_{VERSION}"


def statements(table: str) -> dict[str, str]:
    """The SQL the store sends for each operation (``%s`` placeholders)."""
    # A load without a touch is one plain SELECT.
    sql = {"load": _SELECT.format(table=table, now=_NOW, key="%s")}
    for operation, arity in _ARITY.items():
        sql[operation] = f"CALL {procedure_name(table, operation)}({', '.join(['%s'] * arity)})"
    return sql


def schema_statements(table: str) -> list[str]:
    """The DDL, one statement per item, as a driver sends it (no delimiters)."""
    result: list[str] = [ddl.format(table=table, name_bytes=NAME_BYTES) for ddl in TABLES]
    for operation, (params, body) in PROCEDURES.items():
        values = {
            "table": table,
            "now": _NOW,
            "on_error": _ON_ERROR,
            "max_successors": MAX_SUCCESSORS,
            "name_bytes": NAME_BYTES,
            "key": "k",
        }
        parts = {"select_k": _SELECT, "sets": _SETS, "deletes": _DELETES}
        values.update({name: part.format(**values) for name, part in parts.items()})
        text = body.format(**values)
        name = procedure_name(table, operation)
        result.append(f"CREATE PROCEDURE {name}({params})\nBEGIN{text}\nEND")
    return result
