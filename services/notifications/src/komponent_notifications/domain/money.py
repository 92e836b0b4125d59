"""VAT arithmetic on integer øre, the same rule billing uses so an email never disagrees with the invoice."""

from __future__ import annotations


def vat_amount_ore(net_ore: int, rate_percent: int) -> int:
    """VAT on a net amount, rounded half away from zero (the Danish/EN 16931 convention).

    Credit notes carry negative amounts, so the rounding is symmetric around zero rather than
    Python's banker's rounding.
    """
    product = abs(net_ore) * rate_percent
    rounded = (product + 50) // 100
    return rounded if net_ore >= 0 else -rounded
