"""`benchmarks/turns.py`: the candidates' order in the speed benchmarks."""

from tests import example_modules


def test_each_candidate_runs_once_per_round_in_a_rotated_order():
    turns = example_modules.load("turns")
    order = list(turns.in_turns(["a", "b", "c"], 4))
    assert order == list("abcbcacababc")
    assert list(turns.in_turns({"x": 1}, 2)) == ["x", "x"]
