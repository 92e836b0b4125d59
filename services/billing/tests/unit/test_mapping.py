"""Contract values → billing domain values: the invoice line and buyer snapshot built from events."""

from __future__ import annotations

from datetime import date

import pytest
from komponent_billing.service_layer.mapping import buyer_snapshot, course_line, course_note, course_period
from komponent_billing.service_layer.ports import DocumentRejected
from komponent_contracts.examples import buyer, course


def test_seed_course_line_prices_one_seat_with_course_dates_and_participant() -> None:
    line = course_line(course(), "Søren Ærø Østergård")
    assert line.unit_price_oere == 550_000 and line.quantity == 1
    assert line.item_name == "Vildskab og innovation i politikudvikling, 3.-4. maj 2023"
    assert line.description == "Kursusplads inkl. undervisning, materialer og forplejning"
    assert line.participant_name == "Søren Ærø Østergård"
    assert course_period(course()).start == date(2023, 5, 3) and course_period(course()).end == date(
        2023, 5, 4
    )
    assert course_note(course()).endswith("Comwell Roskilde.")


def test_only_standard_rated_courses_are_invoiced() -> None:
    with pytest.raises(DocumentRejected):
        course_line(course().model_copy(update={"vat_rate_percent": 0}), "X")


def test_buyer_snapshot_carries_every_routing_field_and_tolerates_no_department() -> None:
    snapshot = buyer_snapshot(buyer())
    assert snapshot.routing_key() == ("5798000012349", "Mette Hansen", "PO-2023-0042", "1234-5678")
    assert snapshot.party_name == "Roskilde Kommune, Politisk sekretariat"
    assert snapshot.address.building_number == "1" and snapshot.cvr == "29189404"
    bare = buyer_snapshot(buyer().model_copy(update={"department": "", "account_string": ""}))
    assert bare.party_name == "Roskilde Kommune" and bare.account_string is None
