"""The landing cursor rules (alphadag.market.landing.plan_tick), without Dagster."""

from __future__ import annotations

from alphadag.market.landing import LandingRun, plan_runs, plan_tick

KEYS = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]


class RunKeys:
    """A fake instance: the run keys used so far, and every key asked about."""

    def __init__(self, used: set[str] = frozenset()) -> None:
        self.used = set(used)
        self.asked: list[str] = []

    def __call__(self, key: str) -> bool:
        self.asked.append(key)
        return key in self.used


def _runs() -> list[LandingRun]:
    return plan_runs({"a.csv": "1"}, ["2024-01-02", "2024-01-03", "2024-01-05"], KEYS)


def test_new_files_launch_their_runs_and_merge_the_cursor():
    runs = _runs()
    plan = plan_tick(
        runs, {"old.csv": "0"}, {"a.csv": "1"}, launched_before=lambda: True, key_used=RunKeys()
    )
    assert plan.rewind is None
    assert plan.runs == tuple(runs)
    assert plan.cursor == {"old.csv": "0", "a.csv": "1"}
    assert plan.held == () and plan.rewound == ()


def test_empty_cursor_after_launches_holds_every_run_back():
    keys = RunKeys()
    plan = plan_tick(
        _runs(), {}, {"a.csv": "1", "b.csv": "2"}, launched_before=lambda: True, key_used=keys
    )
    assert plan.rewind == "cursor_reset"
    assert plan.runs == ()
    assert [(r.start, r.end) for r in plan.held] == [
        ("2024-01-02", "2024-01-03"),
        ("2024-01-05", "2024-01-05"),
    ]
    assert plan.cursor == {"a.csv": "1", "b.csv": "2"}  # restarts from now
    assert keys.asked == []


def test_empty_cursor_on_a_fresh_instance_launches():
    asked: list[bool] = []
    plan = plan_tick(
        _runs(),
        {},
        {"a.csv": "1"},
        launched_before=lambda: asked.append(True) or False,
        key_used=RunKeys(),
    )
    assert plan.rewind is None and len(plan.runs) == 2 and asked == [True]


def test_a_used_run_key_gets_the_first_free_rewound_suffix():
    runs = _runs()
    first = runs[0].run_key
    keys = RunKeys({first, f"{first}:rewound:1"})
    plan = plan_tick(
        runs, {"a.csv": "0"}, {"a.csv": "1"}, launched_before=lambda: True, key_used=keys
    )
    assert plan.rewind == "file_reverted"
    assert [r.run_key for r in plan.runs] == [f"{first}:rewound:2", runs[1].run_key]
    assert plan.rewound == (plan.runs[0],)
    assert (plan.rewound[0].start, plan.rewound[0].end) == (runs[0].start, runs[0].end)
