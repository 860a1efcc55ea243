"""Which store errors are collisions of concurrent writers (run the transaction again) and which
are not: a real deadlock on each server, a busy SQLite file, and a plain error."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from movierec.data.store import is_transient
from movierec.errors import StoreError
from tests.conftest import MYSQL_ADMIN_URL, PG_ADMIN_URL, temporary_database


def _wrapped(exc: BaseException) -> StoreError:
    """``exc`` as the store raises it: a StoreError caused by the driver's error."""
    try:
        raise StoreError("the ratings store refused a write") from exc
    except StoreError as wrapped:
        return wrapped


def _deadlock(url: str) -> sa.exc.DBAPIError:
    """Two transactions locking two rows in opposite orders: the server kills one of them."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE collide (id INTEGER PRIMARY KEY, n INTEGER)"))
        conn.execute(sa.text("INSERT INTO collide VALUES (1, 0), (2, 0)"))
    update = sa.text("UPDATE collide SET n = n + 1 WHERE id = :id")
    errors: list[sa.exc.DBAPIError] = []
    both_locked = threading.Barrier(2)

    def lock(first: int, second: int) -> None:
        try:
            with engine.begin() as conn:
                conn.execute(update, {"id": first})
                both_locked.wait(timeout=10)
                conn.execute(update, {"id": second})
        except sa.exc.DBAPIError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=lock, args=pair) for pair in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    engine.dispose()
    assert len(errors) == 1, "one of the two was chosen as the victim"
    return errors[0]


@pytest.mark.parametrize(
    "admin_url",
    [
        pytest.param(PG_ADMIN_URL, marks=pytest.mark.postgres, id="postgresql"),
        pytest.param(MYSQL_ADMIN_URL, marks=pytest.mark.mysql, id="mysql"),
    ],
)
def test_a_deadlock_is_transient(admin_url: str) -> None:
    with temporary_database(admin_url, "deadlock") as url:
        victim = _deadlock(url)
    assert is_transient(_wrapped(victim))
    assert is_transient(victim)


def test_a_busy_sqlite_file_is_transient(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/busy.db"
    holder = sa.create_engine(url)
    waiter = sa.create_engine(url, connect_args={"timeout": 0})
    with holder.connect() as held:
        held.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        held.commit()
        held.exec_driver_sql("BEGIN IMMEDIATE")
        with pytest.raises(sa.exc.OperationalError) as busy, waiter.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        held.rollback()
    assert is_transient(_wrapped(busy.value))


def test_other_errors_are_not(tmp_path: object) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/plain.db")
    with pytest.raises(sa.exc.DBAPIError) as broken, engine.connect() as conn:
        conn.exec_driver_sql("SELECT * FROM no_such_table")
    assert not is_transient(_wrapped(broken.value))
    assert not is_transient(StoreError("no database error under it"))
    assert not is_transient(ValueError("nothing to do with a store"))
