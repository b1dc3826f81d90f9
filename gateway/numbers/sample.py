"""Synthetic but valid inventory rows, for tests, demos and the benchmark."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence

import phonenumbers

from gateway.numbers.rules import IMPORT_COLUMNS

# (area code, locality, state) of real US geographic area codes.
US_AREAS: tuple[tuple[str, str, str], ...] = (
    ("425", "Redmond", "WA"),
    ("206", "Seattle", "WA"),
    ("212", "New York", "NY"),
    ("312", "Chicago", "IL"),
    ("415", "San Francisco", "CA"),
    ("512", "Austin", "TX"),
    ("617", "Boston", "MA"),
    ("303", "Denver", "CO"),
    ("404", "Atlanta", "GA"),
    ("702", "Las Vegas", "NV"),
)


def us_numbers(area_code: str, count: int, start_exchange: int = 200) -> Iterator[str]:
    """``count`` valid E.164 numbers in ``area_code``, in ascending order."""
    produced = 0
    for exchange in range(start_exchange, 1000):
        if exchange % 100 == 11 or str(exchange).endswith("11") or exchange == 555:
            continue
        for line in range(10000):
            candidate = f"+1{area_code}{exchange:03d}{line:04d}"
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate, None)):
                yield candidate
                produced += 1
                if produced >= count:
                    return


def sample_rows(
    per_area: int,
    areas: Sequence[tuple[str, str, str]] = US_AREAS[:2],
    *,
    carrier: str = "",
    calling: str = "inbound+outbound",
    sms: str = "inbound+outbound",
    assignment_type: str = "application",
    cost: str = "1.00",
    start_exchange: int = 200,
) -> Iterator[dict[str, str]]:
    for area_code, locality, state in areas:
        for number in us_numbers(area_code, per_area, start_exchange):
            yield {
                "phoneNumber": number,
                "countryCode": "US",
                "phoneNumberType": "geographic",
                "assignmentType": assignment_type,
                "areaCode": area_code,
                "locality": locality,
                "administrativeDivision": state,
                "calling": calling,
                "sms": sms,
                "costAmount": cost,
                "currencyCode": "USD",
                "carrier": carrier,
            }


def toll_free_rows(count: int, *, carrier: str = "", prefix: str = "800") -> Iterator[dict[str, str]]:
    for number in us_numbers(prefix, count):
        yield {
            "phoneNumber": number,
            "countryCode": "US",
            "phoneNumberType": "tollFree",
            "assignmentType": "application",
            "areaCode": prefix,
            "locality": "",
            "administrativeDivision": "",
            "calling": "inbound+outbound",
            "sms": "inbound+outbound",
            "costAmount": "2.00",
            "currencyCode": "USD",
            "carrier": carrier,
        }


def to_csv(rows: Iterator[dict[str, str]] | Sequence[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(IMPORT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
