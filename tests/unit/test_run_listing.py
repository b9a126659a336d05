"""Listing runs a page at a time from the index: filters, sorting by a metric, columns, no reads."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_lite.client import MISSING, Client
from mlops_lite.core.columns import Column
from mlops_lite.core.records import RunRecord, StepRecord
from mlops_lite.store import MemoryStore
from mlops_lite.store.layout import build_run_commit, build_step_tree, run_ref
from mlops_lite.store.objects import GitObject, Identity, commit, tree

LR = Column("param", "lr")
ACCURACY = Column("metric", "accuracy")


class CountingStore(MemoryStore):
    """A memory store that counts the objects read from it."""

    reads = 0

    def read_object(self, object_id: str, kind: int | None = None) -> bytes:
        self.reads += 1
        return super().read_object(object_id, kind)

    def read_objects(self, object_ids: list[str]) -> dict[str, GitObject]:
        self.reads += len(object_ids)
        return super().read_objects(object_ids)


def record_runs(store: MemoryStore, count: int) -> list[str]:
    code = commit(
        tree_id=tree({}).id,
        parents=[],
        author=Identity("a", "a@x"),
        timestamp=1,
        tz_offset_minutes=0,
        message="c\n",
    )
    store.write_objects([tree({}), code])
    shas = []
    for number in range(count):
        lr = round(0.01 * (number + 1), 4)
        step = StepRecord(
            name="evaluate",
            function="m.evaluate",
            status="completed",
            metadata={"accuracy": 1 - lr},
        )
        step_tree, step_objects = build_step_tree(step, "", {})
        store.write_objects(step_objects)
        record = RunRecord(
            run_name=f"run-{number:04d}",
            pipeline_name="even" if number % 2 == 0 else "odd",
            status="failed" if number % 7 == 3 else "completed",
            start_time=1_700_000_000.0 + number,
            end_time=1_700_000_001.0 + number,
            parameters={"lr": lr, "name": f"n{number}"},
            author={"name": "x", "email": "bob@x" if number % 5 == 0 else "alice@x"},
            step_names=["evaluate"],
            step_summary={"evaluate": step.summary()},
        )
        run_commit, objects = build_run_commit(
            Identity("a", "a@x"), record, {"evaluate": step_tree.id}, code.id
        )
        store.write_objects(objects)
        store.refs.compare_and_swap(
            run_ref(record.pipeline_name, record.run_name), None, run_commit.id
        )
        shas.append(run_commit.id)
    return shas


@pytest.fixture
def store() -> CountingStore:
    store = CountingStore()
    record_runs(store, 120)
    return store


def test_a_page_and_its_columns_come_from_the_index_without_reading_a_record(
    store: CountingStore,
) -> None:
    client = Client(store=store)
    client.find_runs(limit=1)  # the index is built (it reads every run once)
    store.reads = 0
    page = client.find_runs(offset=50, limit=50)
    table = client.run_table(page.runs, [LR, ACCURACY])
    cells = [(run.name, run.status, table.value(i, LR)) for i, run in enumerate(page.runs)]
    assert store.reads == 0
    assert page.total == 120 and len(page.runs) == 50 and page.has_next
    assert cells[0] == ("run-0069", "completed", 0.7)
    assert table.value(0, ACCURACY) == pytest.approx(0.3)
    assert table.value(0, Column("metric", "nope")) is MISSING


def test_filters_combine_and_count_everything_they_select(store: CountingStore) -> None:
    client = Client(store=store)
    page = client.find_runs(pipeline="odd", status="failed", limit=5)
    expected = [n for n in range(120) if n % 2 and n % 7 == 3]
    assert page.total == len(expected)
    assert [run.name for run in page.runs] == [f"run-{n:04d}" for n in sorted(expected)[::-1][:5]]
    assert client.find_runs(author="bob@x", limit=None).total == 24
    assert [r.name for r in client.find_runs(text="run-011", limit=None).runs] == [
        f"run-{n:04d}" for n in range(119, 109, -1)
    ]
    assert client.find_runs(text="100%", limit=None).total == 0  # LIKE wildcards are literal
    last = client.find_runs(offset=100, limit=50)
    assert len(last.runs) == 20 and last.total == 120 and not last.has_next


def test_runs_sort_by_a_metric_with_runs_lacking_it_last(store: CountingStore) -> None:
    client = Client(store=store)
    best = client.find_runs(order_by=ACCURACY, limit=3).runs
    assert [run.name for run in best] == ["run-0000", "run-0001", "run-0002"]
    worst = client.find_runs(order_by=ACCURACY, ascending=True, limit=1).runs
    assert worst[0].name == "run-0119"
    absent = client.find_runs(order_by=Column("metric", "nope"), limit=1).runs
    assert absent[0].name == "run-0119"  # none has it: newest first


def test_the_listing_and_a_comparison_show_the_same_values(store: CountingStore) -> None:
    client = Client(store=store)
    runs = client.find_runs(limit=4).runs
    listed = client.run_table(runs, [LR, ACCURACY, Column("metric", "evaluate.accuracy")])
    compared = client.compare_runs([run.sha for run in runs], listed.columns)
    cells = [[t.value(i, c) for c in listed.columns] for i in range(4) for t in (listed,)]
    assert cells == [[compared.value(i, c) for c in listed.columns] for i in range(4)]
    assert MISSING not in cells[0]
    table: Any = client.compare_runs(runs)
    assert [c.name for c in table.columns] == ["param:lr", "param:name", "metric:accuracy"]
    assert table.differs(LR) and "param:lr" in table.to_csv().splitlines()[0]
