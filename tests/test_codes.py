"""What looks like a verification code, and masking: one pattern for the store, logs and
notifications (watcher/codes.py)."""

from __future__ import annotations

import pytest

from watcher.codes import looks_like_code, mask_code, mask_codes_in


@pytest.mark.parametrize(
    "text",
    [
        "270615 ist dein Bestätigungscode",
        "Your code is 552288.",  # a code ending a sentence
        "Dein Code: 552 288",  # grouped with a space
        "code 664,411, valid for an hour",  # grouped with a comma
        "Código 1234\u00a05678",  # grouped with a no-break space
        "12345678",
    ],
)
def test_code_like_numbers_are_found_and_masked(text: str) -> None:
    assert looks_like_code(text)
    masked = mask_codes_in(text)
    assert not looks_like_code(masked.replace("*", ""))
    assert sum(ch.isdigit() for ch in masked) < sum(ch.isdigit() for ch in text)


@pytest.mark.parametrize(
    "text",
    [
        "amount 1.234.567",  # part of a longer number
        "pi is 3,14159265",
        "123456789 is too long",
        "Order 1234567.89",
        "on 2024-06-03 at 10:00",
        "12345 is too short",
    ],
)
def test_other_numbers_are_not_code_like(text: str) -> None:
    assert not looks_like_code(text)
    assert mask_codes_in(text) == text


def test_masking_keeps_the_first_two_digits_and_the_separators() -> None:
    assert mask_code("482913") == "48****"
    assert mask_code(None) is None
    assert mask_codes_in("552 288 is your code") == "55* *** is your code"
    assert mask_codes_in("Your code is 552288.") == "Your code is 55****."
