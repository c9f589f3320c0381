"""One-row ``INSERT`` and ``UPDATE`` by primary key, without the ORM's query compiler.

The mint path writes its audit row twice (``pending`` before the upstream call,
finished after it), and on that path Django's ``Model.save`` / ``QuerySet.update``
spend more CPU building the statement (a ``Query``, its compiler, a value
preparation per field) than the database spends running it. These helpers build each
statement's text once per model, database and column set, and prepare values with
the fields' own ``pre_save`` / ``get_db_prep_save``, exactly as the compiler does, so
the row written is the same.

They are the ORM's equivalent, not a bypass of it:

- :func:`insert` falls back to ``Model.save(force_insert=True)`` whenever a
  ``pre_save`` or ``post_save`` receiver listens for the model (a site that mirrors
  audit rows elsewhere keeps getting its signal), for a database without
  ``INSERT ... RETURNING`` (Django's feature flag), for a vendor other than
  PostgreSQL and SQLite, and for a model with a database default or a generated
  column;
- :func:`update` sends what ``QuerySet.filter(pk=...).update(...)`` sends, which
  sends no signal either.

The database is the model's write database (routers are asked) and the statement
runs in whatever transaction is open, as the ORM's would.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import connections, router
from django.db.models import NOT_PROVIDED, Field, Model
from django.db.models.signals import post_save, pre_save

M = TypeVar("M", bound=Model)

#: Vendors whose ``RETURNING`` clause is a plain suffix (Oracle's binds an out variable).
FAST_VENDORS = frozenset({"postgresql", "sqlite"})

_insert_sql: dict[tuple[str, type[Model]], tuple[str, list[Field[Any, Any]]] | None] = {}
_update_sql: dict[tuple[str, type[Model], tuple[str, ...]], tuple[str, list[Field[Any, Any]]]] = {}


def insert(obj: M) -> M:
    """``INSERT`` ``obj`` (an unsaved instance with an auto primary key); returns it
    saved: its ``pk`` set from the database, ``_state`` as after ``save()``."""
    model = type(obj)
    alias = router.db_for_write(model, instance=obj)
    connection = connections[alias]
    built = None
    if (
        connection.vendor in FAST_VENDORS
        and model._meta.auto_field is not None
        and connection.features.can_return_columns_from_insert
        and not pre_save.has_listeners(model)
        and not post_save.has_listeners(model)
    ):
        key = (alias, model)
        if key not in _insert_sql:
            _insert_sql[key] = _build_insert(model, connection)
        built = _insert_sql[key]
    if built is None:  # the cases the ORM decides (see the module's docstring)
        obj.save(force_insert=True, using=alias)
        return obj
    sql, fields = built
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None  # RETURNING always answers one row for one VALUES tuple
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = alias
    return obj


def update(model: type[Model], pk: Any, values: dict[str, Any]) -> None:
    """``UPDATE`` the fields named in ``values`` of ``model``'s row ``pk`` (the
    statement ``QuerySet.filter(pk=pk).update(**values)`` sends; no signal)."""
    if not values:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    if connection.vendor not in FAST_VENDORS:
        model._default_manager.using(alias).filter(pk=pk).update(**values)
        return
    names = tuple(values)
    key = (alias, model, names)
    if key not in _update_sql:
        _update_sql[key] = _build_update(model, names, connection)
    sql, fields = _update_sql[key]
    params = [field.get_db_prep_save(_plain(values[field.name]), connection) for field in fields]
    params.append(model._meta.pk.get_db_prep_value(pk, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _plain(value: Any) -> Any:
    # A related object stands for its key, as QuerySet.update() resolves it.
    return value.pk if isinstance(value, Model) else value


def _build_insert(model: type[Model], connection: Any) -> tuple[str, list[Field[Any, Any]]] | None:
    """The statement and its fields; ``None`` where the ORM must decide per row (a
    database default or a generated column: the compiler leaves those columns out)."""
    opts = model._meta
    pk = opts.pk
    assert pk is not None
    fields = [field for field in opts.local_concrete_fields if field is not pk]
    if any(
        getattr(field, "generated", False)
        or getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED
        for field in fields
    ):
        return None
    quote = connection.ops.quote_name
    # PostgreSQL's and SQLite's clause (FAST_VENDORS); Django's helper for it was renamed
    # in 6.0 (return_insert_columns -> returning_columns).
    returning = f"RETURNING {quote(opts.db_table)}.{quote(pk.column)}"
    # Identifiers from the model's metadata, quoted by the backend; values are parameters.
    sql = "INSERT INTO {} ({}) VALUES ({}) {}".format(  # noqa: S608
        quote(opts.db_table),
        ", ".join(quote(field.column) for field in fields),
        ", ".join(["%s"] * len(fields)),
        returning,
    )
    return sql, fields


def _build_update(
    model: type[Model], names: tuple[str, ...], connection: Any
) -> tuple[str, list[Field[Any, Any]]]:
    opts = model._meta
    fields: list[Field[Any, Any]] = [opts.get_field(name) for name in names]  # type: ignore[misc]
    quote = connection.ops.quote_name
    pk = opts.pk
    assert pk is not None
    sql = "UPDATE {} SET {} WHERE {} = %s".format(  # noqa: S608 (as in _build_insert)
        quote(opts.db_table),
        ", ".join(f"{quote(field.column)} = %s" for field in fields),
        quote(pk.column),
    )
    return sql, fields
