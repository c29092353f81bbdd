"""The order in which the speed benchmarks run their candidates.

Every candidate runs once per round, in an order rotated by one place each
round: a slow spell of a shared machine falls on all of them alike, and no
candidate always runs right after the same other (whose cache or allocator
state it would inherit). Ratios are then taken within each round.
"""


def in_turns(names, rounds):
    """Yields each of `names` once per round, for `rounds` rounds, round
    `r` starting at the `r`-th name (modulo their number)."""
    names = list(names)
    for round_index in range(rounds):
        shift = round_index % len(names)
        yield from names[shift:] + names[:shift]
