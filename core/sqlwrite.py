"""Writes on the hot path without the ORM's statement compiler, and several of them in one round trip.

A request that charges a card writes about ten rows; through ``Model.objects.create`` /
``QuerySet.update`` each statement costs about 0.4 ms of Python to compile before it is sent, more
than the round trip itself. These helpers build the same statements from the model's fields (the
SQL text once per model and column list, the values through each field's own ``pre_save`` and
``get_db_prep_save``, exactly as the compiler does) and ``execute_together`` sends statements whose
results nobody reads as one query on PostgreSQL.

PostgreSQL runs the statements of one query string as one transaction when no transaction is open
(so an INSERT of a row and of its log line is atomic with no BEGIN/COMMIT round trips), or inside the
open one. Other databases (SQLite under ``make run``) get the same statements one by one, inside an
atomic block. Only plain values are accepted: an expression (``F()``, ``Now()``) raises ``TypeError``;
use the ORM for those.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Model

Statement = tuple[str, list[Any]]


def write_alias(model: type[Model]) -> str:
    return router.db_for_write(model) or "default"


@functools.cache
def insert_columns(model: type[Model]) -> tuple[tuple[Any, ...], str]:
    """The fields an INSERT of ``model`` writes (every concrete one but an auto-numbered key) and the
    statement's head, up to VALUES."""
    fields = tuple(f for f in model._meta.concrete_fields if not (f.primary_key and _auto_numbered(f)))
    connection = connections[write_alias(model)]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    return fields, f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES "  # noqa: S608 (names from the model)


def _auto_numbered(field) -> bool:
    return field.get_internal_type() in {"AutoField", "BigAutoField", "SmallAutoField"}


def _plain(value: Any, field) -> Any:
    if hasattr(value, "resolve_expression"):
        raise TypeError(f"{field.model.__name__}.{field.name}: an expression; write this row with the ORM")
    return value


def insert_statement(objs: Sequence[Model]) -> Statement:
    """One INSERT of every row in ``objs`` (instances of one model, not yet stored).

    Each field's ``pre_save(add=True)`` runs as in ``save()`` (``auto_now_add`` timestamps are set on
    the instance), defaults are the instance's own (set when it was built). Auto-numbered keys are
    left to the database and not read back; use the ORM where the key is needed.
    """
    if not objs:
        raise ValueError("no rows to insert")
    model = type(objs[0])
    fields, head = insert_columns(model)
    connection = connections[write_alias(model)]
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params: list[Any] = []
    for obj in objs:
        if type(obj) is not model:
            raise TypeError("insert_statement: rows of one model only")
        params += _row_params(obj, fields, connection)
    return head + ", ".join([placeholders] * len(objs)), params


def _row_params(obj: Model, fields: Iterable[Any], connection) -> list[Any]:
    """The values of ``fields`` of ``obj`` as an INSERT sends them: each field's ``pre_save(add=True)``
    (``auto_now_add`` sets the instance's timestamp), then ``get_db_prep_save``."""
    return [
        field.get_db_prep_save(_plain(field.pre_save(obj, add=True), field), connection=connection) for field in fields
    ]


def insert_select_statement(obj: Model, *, computed: dict[str, str]) -> Statement:
    """``INSERT INTO <table> (<columns>) SELECT <values>`` for one row: ``insert_statement`` with the
    columns named in ``computed`` (attribute names) given as SQL expressions instead, over the
    ``FROM ...`` the caller appends (a WITH's result, say)."""
    model = type(obj)
    fields, head = insert_columns(model)
    connection = connections[write_alias(model)]
    unknown = set(computed) - {f.attname for f in fields}
    if unknown:
        raise ValueError(f"not columns of {model.__name__}: {sorted(unknown)}")
    values = [computed.get(field.attname, "%s") for field in fields]
    params = _row_params(obj, [f for f in fields if f.attname not in computed], connection)
    return head.removesuffix("VALUES ") + "SELECT " + ", ".join(values), params


def insert_row(obj: Model, *, savepoint: bool = False) -> None:
    """INSERT ``obj`` (one round trip, no transaction of its own), as ``save()`` would: its
    auto-numbered key, if it has one, is read back with ``RETURNING``. Raises ``IntegrityError`` as the
    ORM does. Inside a transaction, ``savepoint=True`` runs it in a savepoint (as ``execute_together``
    does), so the caller can catch the error and go on; outside one it changes nothing."""
    model = type(obj)
    if savepoint and connections[write_alias(model)].in_atomic_block:
        with transaction.atomic(using=write_alias(model)):
            insert_row(obj)
        return
    sql, params = insert_statement([obj])
    pk = model._meta.pk
    auto = _auto_numbered(pk)
    alias = write_alias(model)
    connection = connections[alias]
    if auto:
        sql += f" RETURNING {connection.ops.quote_name(pk.column)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if auto:
            obj.pk = cursor.fetchone()[0]
    mark_stored([obj], model)


def mark_stored(objs: Iterable[Model], model: type[Model]) -> None:
    """Tell the instances they are rows now (as ``save()`` does once it has inserted them)."""
    alias = write_alias(model)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = alias


def update_statement(model: type[Model], *, where: dict[str, Any], values: dict[str, Any]) -> Statement:
    """``UPDATE <table> SET <values> WHERE <where>``, both keyed by field attribute names (``merchant_id``,
    ``status``), equality only. Values go through ``get_db_prep_save``, the conditions through
    ``get_db_prep_value``, as a queryset's ``.filter(**where).update(**values)`` would send them."""
    if not values or not where:
        raise ValueError("an UPDATE needs values and conditions")
    meta = model._meta
    connection = connections[write_alias(model)]
    quote = connection.ops.quote_name
    by_attname = {f.attname: f for f in meta.concrete_fields}
    sets, params = [], []
    for name, value in values.items():
        field = by_attname[name]
        sets.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(_plain(value, field), connection=connection))
    conditions = []
    for name, value in where.items():
        field = by_attname[name]
        if value is None:
            conditions.append(f"{quote(field.column)} IS NULL")
            continue
        conditions.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_value(_plain(value, field), connection=connection, prepared=False))
    sql = f"UPDATE {quote(meta.db_table)} SET {', '.join(sets)} WHERE {' AND '.join(conditions)}"  # noqa: S608
    return sql, params


def execute(statement: Statement, *, using: str = "default") -> int:
    """Run one statement; the number of rows it wrote."""
    sql, params = statement
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def execute_together(statements: Sequence[Statement], *, using: str = "default", savepoint: bool = False) -> None:
    """Run ``statements`` all or none, in one round trip on PostgreSQL; rows written are not reported.

    Outside a transaction they form one of their own. Inside one they are part of it, and an error
    aborts it as an ORM statement's would; ``savepoint=True`` runs them in a savepoint there instead
    (two more round trips), so the caller can catch an ``IntegrityError`` and go on.
    """
    if not statements:
        return
    connection = connections[using]
    if savepoint and connection.in_atomic_block:
        with transaction.atomic(using=using):
            execute_together(statements, using=using)
        return
    if connection.vendor == "postgresql" and len(statements) > 1:
        sql = ";\n".join(sql for sql, _ in statements)
        params = [value for _, values in statements for value in values]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        return
    with transaction.atomic(using=using), connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
